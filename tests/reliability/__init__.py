# cinder.tests.unit applies cinder's eventlet monkey patching and registers
# the versioned objects; both must happen before oslo_vmware or
# cinder.volume modules are imported.
import cinder.tests.unit  # noqa: F401
