"""osbs.exceptions (double of osbs-client 2.8.0, contract section 4)."""


class OsbsException(Exception):
    def __init__(self, message=None, cause=None, traceback=None):
        if message is None and cause is not None:
            message = str(cause)
        super(OsbsException, self).__init__(message)
        self.message = message
        self.cause = cause
        self.traceback = traceback

    def __str__(self):
        return str(self.message)


class OsbsResponseException(OsbsException):
    def __init__(self, message, status_code, *args, **kwargs):
        super(OsbsResponseException, self).__init__(message, *args, **kwargs)
        self.status_code = status_code
        self.json = None
        text = message.decode('utf-8', 'replace') if isinstance(message, bytes) else message
        try:
            import json
            self.json = json.loads(text)
        except (TypeError, ValueError):
            self.json = None


class OsbsNetworkException(OsbsException):
    def __init__(self, url, message, status_code, *args, **kwargs):
        super(OsbsNetworkException, self).__init__(message, *args, **kwargs)
        self.url = url
        self.status_code = status_code

    def __str__(self):
        return "(%s) %s" % (self.status_code, self.message)


class OsbsAuthException(OsbsException):
    pass


class OsbsValidationException(OsbsException):
    pass


class OsbsLocallyModified(OsbsException):
    pass


class OsbsCommitNotFound(OsbsException):
    pass
