# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.

"""Serve a WSGI application on a local port, one thread per request.

glance-api 33 no longer runs standalone (its ``glance-api`` command only
says to deploy ``glance.wsgi.api:application`` under a WSGI server), and
uWSGI would have to be compiled. The test stack serves that application
with the standard library instead::

    python -m tests.fullstack.wsgi_server 127.0.0.1 9292 \\
        glance.wsgi.api:application

The application module is imported in the serving process, so it reads its
configuration there (glance: from ``OS_GLANCE_CONFIG_DIR``).
"""

import importlib
import signal
import socketserver
import sys
from wsgiref import simple_server


class ThreadingWSGIServer(socketserver.ThreadingMixIn,
                          simple_server.WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class RequestHandler(simple_server.WSGIRequestHandler):

    def address_string(self):
        # No reverse DNS lookup for every request.
        return self.client_address[0]


def load(spec):
    module_name, _sep, attribute = spec.partition(':')
    return getattr(importlib.import_module(module_name),
                   attribute or 'application')


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 3:
        sys.stderr.write('usage: wsgi_server HOST PORT MODULE:ATTRIBUTE\n')
        return 2
    host, port, spec = argv[0], int(argv[1]), argv[2]
    application = load(spec)
    server = simple_server.make_server(
        host, port, application, server_class=ThreadingWSGIServer,
        handler_class=RequestHandler)

    def stop(signum, frame):
        raise SystemExit(0)
    signal.signal(signal.SIGTERM, stop)
    sys.stderr.write('serving %s on http://%s:%d/\n' % (spec, host, port))
    sys.stderr.flush()
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


if __name__ == '__main__':
    sys.exit(main())
