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

"""The vCenter to run against, as named by the environment.

=====================  ==========================================
VCENTER_HOST           vCenter address (unset: no vCenter)
VCENTER_PORT           443 by default (the simulator listens on 8989)
VCENTER_USER           user name
VCENTER_PASSWORD       password
VCENTER_WSDL           vim25 WSDL URL; the simulator needs the generated one
VCENTER_INSECURE       "true" to skip certificate checks (default true)
=====================  ==========================================

Imports nothing of cinder, so the full-stack tests use it too.
"""

import os

from oslo_utils import strutils

ENV_HOST = 'VCENTER_HOST'


def from_env():
    """The vCenter as cinder's ``vmware_*`` options, or None when unset."""
    host = os.environ.get(ENV_HOST)
    if not host:
        return None
    return {
        'vmware_host_ip': host,
        'vmware_host_port': int(os.environ.get('VCENTER_PORT', '443')),
        'vmware_host_username': os.environ.get('VCENTER_USER', 'user'),
        'vmware_host_password': os.environ.get('VCENTER_PASSWORD', 'pass'),
        'vmware_wsdl_location': os.environ.get('VCENTER_WSDL') or None,
        'vmware_insecure': strutils.bool_from_string(
            os.environ.get('VCENTER_INSECURE', 'true')),
    }
