#!/usr/bin/env python3
"""Generate a vSphere "vim25" WSDL (vimService.wsdl + vim.wsdl +
vim-messagetypes.xsd) that suds / oslo.vmware can load, for servers that do
not publish one (govmomi's vcsim answers 404 on /sdk/vimService.wsdl).

Inputs (all from PyPI packages, nothing downloaded from elsewhere):
  * data types: oslo.vmware ships vim-types.xsd, query-types.xsd,
    core-types.xsd and reflect-types.xsd under oslo_vmware/wsdl/<ver>/
    (they are there for the PBM WSDL); they are copied next to the
    generated files.
  * operations: pyVmomi's type information (method name, parameters with
    their types/optionality, result type) for every vim25 managed object.

Usage: python gen_vim_wsdl.py OUTDIR [OSLO_WSDL_VERSION]   (default: newest
oslo_vmware/wsdl/<ver> that has vim-types.xsd, e.g. 8.0)
Then pass wsdl_loc='file://OUTDIR/vimService.wsdl' to VMwareAPISession, or set
cinder's vmware_wsdl_location to that URL.
"""
import os
import re
import shutil
import sys
from xml.sax.saxutils import quoteattr

import oslo_vmware
from pyVmomi import VmomiSupport as V

XSD_NS = 'http://www.w3.org/2001/XMLSchema'
XSD_FILES = ('core-types.xsd', 'query-types.xsd', 'reflect-types.xsd',
             'vim-types.xsd')


def main():  # noqa: C901  (one linear pass over the inputs)
    out = os.path.abspath(sys.argv[1])
    base = os.path.join(os.path.dirname(oslo_vmware.__file__), 'wsdl')
    if len(sys.argv) > 2:
        ver = sys.argv[2]
    else:
        vers = [v for v in os.listdir(base)
                if os.path.exists(os.path.join(base, v, 'vim-types.xsd'))]
        if not vers:
            sys.exit('oslo.vmware %s ships no vim-types.xsd' % base)
        ver = max(vers, key=lambda v: tuple(int(x) for x in v.split('.')))
    src = os.path.join(base, ver)
    os.makedirs(out, exist_ok=True)
    known = set()
    for f in XSD_FILES:
        shutil.copy(os.path.join(src, f), os.path.join(out, f))
        with open(os.path.join(src, f)) as fh:
            known.update(re.findall(r'<(?:complex|simple)Type name="([^"]+)"',
                                    fh.read()))

    def xtype(type_name):
        """-> (qualified xsd type, is_array) or None if not expressible."""
        t = V.GetVmodlType(type_name)
        arr = issubclass(t, V.Array)
        item = t.Item if arr else t
        if issubclass(item, V.ManagedObject):
            return 'vim25:ManagedObjectReference', arr
        ns, name = V.GetQualifiedWsdlName(item)
        if ns == XSD_NS:
            return 'xsd:' + name, arr
        if name in ('TypeName', 'PropertyPath', 'MethodName'):
            return 'xsd:string', arr
        if name not in known:
            return None
        return 'vim25:' + name, arr

    methods = {}
    skipped = []
    for mo_name in sorted(V._managedDefMap):
        t = V.GetVmodlType(mo_name)
        for m in t._methodInfo.values():
            if m.typeName != mo_name or m.wsdlName in methods:
                continue
            ns = V.GetVersionNamespace(m.version).split('/')[0]
            if ns not in ('vim25', 'vim2'):
                continue
            params = []
            ok = True
            for p in m.params:
                opt = bool(p.flags & V.F_OPTIONAL)
                x = xtype(p.typeName)
                if x is None:
                    if opt:   # newer optional parameter: leave it out
                        continue
                    ok = False
                    break
                params.append((p.name, x[0], x[1], opt))
            res = None
            if ok and m.resultName != 'void':
                res = xtype(m.resultName) or ('xsd:anyType', False)
            if not ok:
                skipped.append(m.wsdlName)
                continue
            methods[m.wsdlName] = (params, res)

    # vim-messagetypes.xsd: <Method>RequestType + request elements
    mt = ['<?xml version="1.0" encoding="UTF-8" ?>',
          '<schema targetNamespace="urn:vim25" '
          'xmlns="http://www.w3.org/2001/XMLSchema" xmlns:vim25="urn:vim25" '
          'xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
          'elementFormDefault="qualified">',
          '   <include schemaLocation="vim-types.xsd" />']
    for name, (params, res) in sorted(methods.items()):
        mt.append('   <complexType name="%sRequestType"><sequence>' % name)
        mt.append('      <element name="_this" '
                  'type="vim25:ManagedObjectReference" />')
        for pname, ptype, arr, opt in params:
            mt.append('      <element name=%s type="%s"%s%s />' % (
                quoteattr(pname), ptype, ' minOccurs="0"' if opt else '',
                ' maxOccurs="unbounded"' if arr else ''))
        mt.append('   </sequence></complexType>')
    mt.append('</schema>')

    w = ['<?xml version="1.0" encoding="UTF-8" ?>',
         '<definitions targetNamespace="urn:vim25" '
         'xmlns="http://schemas.xmlsoap.org/wsdl/" '
         'xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/" '
         'xmlns:vim25="urn:vim25" '
         'xmlns:xsd="http://www.w3.org/2001/XMLSchema">',
         '<types>',
         '<schema targetNamespace="urn:vim25" '
         'xmlns="http://www.w3.org/2001/XMLSchema" xmlns:vim25="urn:vim25" '
         'xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
         'elementFormDefault="qualified">',
         '   <include schemaLocation="vim-messagetypes.xsd" />']
    for name, (params, res) in sorted(methods.items()):
        w.append('   <element name="%s" type="vim25:%sRequestType" />'
                 % (name, name))
        if res is None:
            w.append('   <element name="%sResponse"><complexType />'
                     '</element>' % name)
        else:
            w.append('   <element name="%sResponse"><complexType><sequence>'
                     '<element name="returnval" type="%s" minOccurs="0"%s />'
                     '</sequence></complexType></element>'
                     % (name, res[0],
                        ' maxOccurs="unbounded"' if res[1] else ''))
    w += ['</schema>', '</types>']
    for name in sorted(methods):
        w.append('<message name="%sRequestMsg"><part name="parameters" '
                 'element="vim25:%s" /></message>' % (name, name))
        w.append('<message name="%sResponseMsg"><part name="parameters" '
                 'element="vim25:%sResponse" /></message>' % (name, name))
    w.append('<portType name="VimPortType">')
    for name in sorted(methods):
        w.append('   <operation name="%s">'
                 '<input message="vim25:%sRequestMsg" />'
                 '<output message="vim25:%sResponseMsg" /></operation>'
                 % (name, name, name))
    w.append('</portType>')
    w.append('<binding name="VimBinding" type="vim25:VimPortType">'
             '<soap:binding style="document" '
             'transport="http://schemas.xmlsoap.org/soap/http" />')
    for name in sorted(methods):
        w.append('   <operation name="%s"><soap:operation '
                 'soapAction="urn:vim25/6.5" />'
                 '<input><soap:body use="literal" />'
                 '</input><output><soap:body use="literal" /></output>'
                 '</operation>' % name)
    w += ['</binding>', '</definitions>']

    svc = '''<?xml version="1.0" encoding="UTF-8" ?>
<definitions targetNamespace="urn:vim25Service"
   xmlns="http://schemas.xmlsoap.org/wsdl/"
   xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/"
   xmlns:interface="urn:vim25">
   <import location="vim.wsdl" namespace="urn:vim25" />
   <service name="VimService">
      <port binding="interface:VimBinding" name="VimPort">
         <soap:address location="https://localhost/sdk" />
      </port>
   </service>
</definitions>
'''
    for fname, text in (('vim-messagetypes.xsd', '\n'.join(mt) + '\n'),
                        ('vim.wsdl', '\n'.join(w) + '\n'),
                        ('vimService.wsdl', svc)):
        with open(os.path.join(out, fname), 'w') as fh:
            fh.write(text)
    print('%d operations written to %s (types from oslo.vmware wsdl/%s); '
          '%d skipped (types missing from that xsd): %s'
          % (len(methods), out, ver, len(skipped), ' '.join(sorted(skipped))))


if __name__ == '__main__':
    main()
