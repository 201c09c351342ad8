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

"""How the operator command fails: one line and an exit code.

The codes are documented in cinder_vmware_cache.cmd.image_cache.
"""

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_VCENTER = 3
EXIT_INTERRUPTED = 130


class CommandError(Exception):
    """A failure to report in one line, with the exit code to return."""

    def __init__(self, message, code=EXIT_FAILED):
        super().__init__(message)
        self.code = code
