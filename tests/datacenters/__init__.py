from tests import common

common.prepare_process()
