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

"""Secrets never leave the command: messages and log lines are masked."""

import logging
from urllib import parse as urlparse

from oslo_utils import strutils

MASK = '***'


class Secrets(object):
    """Masks secrets in every message and log line we let out.

    oslo's ``mask_password`` catches passwords by their keys (``password=``,
    ``<password>`` ...); the known values are replaced wherever they
    appear, for the texts that do not name them (a URL, an error message).
    """

    def __init__(self):
        self._values = set()

    def add(self, value):
        if value:
            self._values.add(str(value))

    def __call__(self, text):
        text = strutils.mask_password(str(text), secret=MASK)
        for value in sorted(self._values, key=len, reverse=True):
            text = text.replace(value, MASK)
        return text


class RedactingFormatter(logging.Formatter):
    """Wraps a handler's formatter and masks secrets in what it produces.

    Masking the finished text covers the message, its arguments, the error
    summary oslo.log appends and the formatted traceback.
    """

    def __init__(self, inner, secrets):
        super().__init__()
        self._inner = inner or logging.Formatter()
        self._mask = secrets

    def format(self, record):
        return self._mask(self._inner.format(record))


def url_password(url):
    """The password in a URL (None without one): it is a secret too."""
    try:
        return urlparse.urlsplit(url or '').password
    except ValueError:
        return None
