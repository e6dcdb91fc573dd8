"""osbs.tekton.PipelineRun (double): what create_* returns (an object, not a dict)."""


class PipelineRun(object):
    def __init__(self, os, pipeline_run_name, pipeline_run_data=None):
        self.os = os
        self.pipeline_run_name = pipeline_run_name
        self.input_data = pipeline_run_data
        self.data = None

    def __repr__(self):
        return '<PipelineRun %s>' % self.pipeline_run_name
