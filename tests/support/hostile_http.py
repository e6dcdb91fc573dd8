"""A hostile HTTP server on 127.0.0.1 for the registry client and the yum repo fetch:
each path answers with what a test sets (status, headers, a body that may be huge,
generated lazily, or drip-fed)."""

import http.server
import threading
import time


class Answer(object):
    """status, headers, body: bytes, or a callable(write) streaming it; drip: seconds
    between bytes of the status line and headers (a server that never finishes)."""

    def __init__(self, status=200, headers=None, body=b'', drip=None):
        self.status = status
        self.headers = dict(headers or {})
        self.body = body
        self.drip = drip


class HostileServer(object):
    def __init__(self):
        self.answers = {}        # path (without query) -> Answer
        self.requests = []       # (method, path, headers)
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'

            def log_message(self, *args):
                pass

            def _answer(self):
                path = self.path.split('?', 1)[0]
                server.requests.append((self.command, path, dict(self.headers)))
                length = int(self.headers.get('Content-Length') or 0)
                if length:
                    self.rfile.read(length)
                answer = server.answers.get(path) or Answer(404, body=b'{}')
                try:
                    if answer.drip is not None:
                        for byte in b'HTTP/1.1 200 OK\r\nX-Slow: ' + b'a' * 100000:
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                            time.sleep(answer.drip)
                        return
                    self.send_response(answer.status)
                    for key, value in answer.headers.items():
                        self.send_header(key, value)
                    if callable(answer.body):
                        self.send_header('Connection', 'close')
                        self.end_headers()
                        answer.body(self.wfile)
                        self.close_connection = True
                        return
                    self.send_header('Content-Length', str(len(answer.body)))
                    self.end_headers()
                    self.wfile.write(answer.body)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

            do_GET = do_PUT = do_HEAD = do_POST = _answer

        self.httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.httpd.daemon_threads = True
        # a client that hangs up is what these tests want: no server tracebacks
        self.httpd.handle_error = lambda request, address: None
        self.port = self.httpd.server_address[1]
        self.url = 'http://127.0.0.1:%d' % self.port
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def set(self, path, answer):
        self.answers[path] = answer

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def endless(chunk=b'a' * 65536, seconds=None, drip=None):
    """A body callable: `chunk` over and over (for `seconds`, or until the client goes),
    or one byte every `drip` seconds."""
    def write(wfile):
        end = time.monotonic() + seconds if seconds else None
        try:
            while end is None or time.monotonic() < end:
                if drip is not None:
                    wfile.write(b'{')
                    wfile.flush()
                    time.sleep(drip)
                else:
                    wfile.write(chunk)
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass
    return write
