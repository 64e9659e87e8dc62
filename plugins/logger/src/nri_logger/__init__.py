"""nri-logger: an NRI plugin that logs the requests and events it receives.

A Python port of upstream containerd/nri ``plugins/logger``: each subscribed request is
logged with its pod and container data as YAML, to stderr or a file, and new containers
can get a marker annotation or environment variable (``logger-pid-<pid>``).
"""

from nri_logger._config import LoggerConfig, parse_config
from nri_logger._dump import dump_lines, to_data, to_yaml
from nri_logger._plugin import RequestLogger

__all__ = ["LoggerConfig", "RequestLogger", "dump_lines", "parse_config", "to_data", "to_yaml"]
