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

"""End-to-end tests: real cinder and glance services, driven by the CLI.

Unlike tests/vcsim, nothing here imports cinder into the test process (no
monkey patching): cinder and glance run as their own processes, started
from configuration files the harness writes, and the test talks to them
only through the ``openstack`` and ``cinder`` commands, and to vCenter
through pyVmomi. The service processes import two small modules of this
package (``trusted_token``, ``wsgi_server``), which import nothing of it.
"""
