// Runtime fault injection for the vcsim front-end (a test tool; see main.go).
//
// main.go wraps the simulator's HTTP handler with faultInjector.wrap, so that
// tests can make chosen requests fail, hang or drop without restarting vcsim.
// Rules are managed over JSON on the same (loopback) listener:
//
//	GET    /vcsim/faults       list the rules, with their counters
//	GET    /vcsim/faults/ID    one rule
//	POST   /vcsim/faults       add a rule (an object) or several (a list);
//	                           answers what was stored, with "id"
//	DELETE /vcsim/faults       remove all rules
//	DELETE /vcsim/faults/ID    remove one rule (answers it, with its counters)
//
// A rule selects requests by any of: "method" (the SOAP method, i.e. the first
// element inside soapenv:Body, on /sdk, /pbm and the other SOAP
// endpoints; "*" = any), "this" (the moref value of _this), "body_contains"
// (a substring of the SOAP body), "path_prefix" (URL path, e.g. "/folder/"
// or "/nfc/") and "http_method" (e.g. "PUT").  All given selectors must match.
// The first rule (lowest id) that matches, has "count" left (0 = unlimited)
// and wins its "probability" roll (default 1) is applied:
//
//	fault       SOAP fault, HTTP 500, encoded like vcsim's own faults
//	            (<detail><XFault xsi:type="X">); "fault" names the vim25 fault
//	            type (default SystemError), "message" the faultstring.  On
//	            non-SOAP requests: plain HTTP error "status" (default 500).
//	delay       wait "delay_ms", then serve the request normally.
//	drop        close the TCP connection without any response (no TLS
//	            close_notify either), after "delay_ms" if given.
//	task_error  (methods named *_Task) the method is not run; the call answers
//	            a new Task that ends in state error with the given fault, after
//	            staying "running" for "delay_ms" if given.
//
// "matched" counts the requests that matched a rule's selectors, "hits" the
// times its action was applied.  Removing a rule releases the requests it is
// still delaying; they are then served normally.
package main

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	stdxml "encoding/xml"
	"errors"
	"fmt"
	"io/ioutil"
	"log"
	"math/rand"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/types"
	"github.com/vmware/govmomi/vim25/xml"
)

const faultsPath = "/vcsim/faults"

type faultRule struct {
	ID int `json:"id"`

	// selectors
	Method       string `json:"method,omitempty"`
	This         string `json:"this,omitempty"`
	BodyContains string `json:"body_contains,omitempty"`
	PathPrefix   string `json:"path_prefix,omitempty"`
	HTTPMethod   string `json:"http_method,omitempty"`

	// action
	Action      string   `json:"action"`
	Fault       string   `json:"fault,omitempty"`
	Message     string   `json:"message,omitempty"`
	Status      int      `json:"status,omitempty"`
	DelayMs     int      `json:"delay_ms,omitempty"`
	Count       int      `json:"count,omitempty"`
	Probability *float64 `json:"probability,omitempty"`

	// counters (output only)
	Matched int  `json:"matched"`
	Hits    int  `json:"hits"`
	Active  bool `json:"active"`

	faultType reflect.Type
	release   chan struct{} // closed when the rule is removed
}

func (r *faultRule) active() bool { return r.Count == 0 || r.Hits < r.Count }

func (r *faultRule) message(soap bool) string {
	switch {
	case r.Message != "":
		return r.Message
	case soap:
		return fmt.Sprintf("vcsim fault injection: %s (rule %d)", r.faultType.Name(), r.ID)
	default:
		return fmt.Sprintf("vcsim fault injection (rule %d)", r.ID)
	}
}

// newFault makes a fault of the rule's type.  Its faultMessage carries the
// message: a fault element without any child (e.g. a bare InvalidArgument)
// is read by suds as a string, and oslo.vmware then reports the fault "Text".
func (r *faultRule) newFault(msg string) types.BaseMethodFault {
	fault := reflect.New(r.faultType).Interface().(types.BaseMethodFault)
	fault.GetMethodFault().FaultMessage = []types.LocalizableMessage{{Key: "vcsim.faultInjection", Message: msg}}
	return fault
}

var methodFaultType = reflect.TypeOf((*types.BaseMethodFault)(nil)).Elem()

func (r *faultRule) validate() error {
	r.HTTPMethod = strings.ToUpper(r.HTTPMethod)
	if r.Method == "" && r.This == "" && r.BodyContains == "" && r.PathPrefix == "" && r.HTTPMethod == "" {
		return errors.New(`a rule needs a selector: method, this, body_contains, path_prefix or http_method (path_prefix "/" matches everything)`)
	}
	if r.PathPrefix != "" && !strings.HasPrefix(r.PathPrefix, "/") {
		return errors.New(`path_prefix must start with "/"`)
	}
	if r.Count < 0 || r.DelayMs < 0 {
		return errors.New("count and delay_ms must not be negative")
	}
	if p := r.Probability; p != nil && (*p < 0 || *p > 1) {
		return errors.New("probability must be between 0 and 1")
	}
	if r.Status != 0 && (r.Status < 400 || r.Status > 599) {
		return errors.New("status must be an HTTP error status (400-599)")
	}
	switch r.Action {
	case "delay", "drop":
	case "task_error":
		if r.Method != "*" && !strings.HasSuffix(r.Method, "_Task") {
			return errors.New(`task_error needs a method named *_Task (or "*" for all of them)`)
		}
		fallthrough
	case "fault":
		name := r.Fault
		if name == "" {
			name = "SystemError"
		}
		t, ok := types.TypeFunc()(name)
		if !ok || !reflect.PtrTo(t).Implements(methodFaultType) {
			return fmt.Errorf("%q is not a vim25 fault type (e.g. InvalidArgument, SystemError, NotAuthenticated, FileNotFound)", r.Fault)
		}
		r.faultType = t
	default:
		return fmt.Errorf("unknown action %q (fault, delay, drop, task_error)", r.Action)
	}
	return nil
}

// request is what rules are matched against.
type request struct {
	path, httpMethod string
	soap             bool
	method           string // SOAP method
	this             types.ManagedObjectReference
	body             []byte
}

func (r *faultRule) matches(q *request) bool {
	if r.PathPrefix != "" && !strings.HasPrefix(q.path, r.PathPrefix) {
		return false
	}
	if r.HTTPMethod != "" && r.HTTPMethod != q.httpMethod {
		return false
	}
	if r.Method != "" || r.This != "" || r.BodyContains != "" {
		if !q.soap || q.method == "" {
			return false
		}
		if r.Method != "" && r.Method != "*" && r.Method != q.method {
			return false
		}
		if r.Action == "task_error" && !strings.HasSuffix(q.method, "_Task") {
			return false
		}
		if r.This != "" && r.This != q.this.Value {
			return false
		}
		if r.BodyContains != "" && !bytes.Contains(q.body, []byte(r.BodyContains)) {
			return false
		}
	}
	return true
}

type faultInjector struct {
	mu     sync.Mutex
	rules  []*faultRule
	nextID int
	rnd    *rand.Rand
}

func newFaultInjector() *faultInjector {
	return &faultInjector{nextID: 1, rnd: rand.New(rand.NewSource(time.Now().UnixNano()))}
}

// addJSON adds one rule (a JSON object) or several (a JSON list), all or none.
func (f *faultInjector) addJSON(data []byte) ([]faultRule, error) {
	var rules []*faultRule
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var err error
	if d := bytes.TrimSpace(data); len(d) > 0 && d[0] == '[' {
		err = dec.Decode(&rules)
	} else {
		rule := new(faultRule)
		err = dec.Decode(rule)
		rules = append(rules, rule)
	}
	if err != nil {
		return nil, fmt.Errorf("invalid rule JSON: %s", err)
	}
	for i, r := range rules {
		if r == nil {
			return nil, fmt.Errorf("rule %d: null", i)
		}
		if err := r.validate(); err != nil {
			if len(rules) > 1 {
				return nil, fmt.Errorf("rule %d: %s", i, err)
			}
			return nil, err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	added := make([]faultRule, 0, len(rules))
	for _, r := range rules {
		r.ID, r.Matched, r.Hits = f.nextID, 0, 0
		f.nextID++
		r.release = make(chan struct{})
		f.rules = append(f.rules, r)
		added = append(added, f.snapshot(r))
	}
	return added, nil
}

func (f *faultInjector) snapshot(r *faultRule) faultRule {
	c := *r
	c.Active = r.active()
	return c
}

func (f *faultInjector) list() []faultRule {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]faultRule, 0, len(f.rules))
	for _, r := range f.rules {
		out = append(out, f.snapshot(r))
	}
	return out
}

func (f *faultInjector) get(id int) (faultRule, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.rules {
		if r.ID == id {
			return f.snapshot(r), true
		}
	}
	return faultRule{}, false
}

func (f *faultInjector) remove(id int) (faultRule, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, r := range f.rules {
		if r.ID == id {
			f.rules = append(f.rules[:i], f.rules[i+1:]...)
			close(r.release)
			return f.snapshot(r), true
		}
	}
	return faultRule{}, false
}

func (f *faultInjector) clear() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := len(f.rules)
	for _, r := range f.rules {
		close(r.release)
	}
	f.rules = nil
	return n
}

func (f *faultInjector) empty() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.rules) == 0
}

// pick counts the request against every rule it matches and returns the rule
// to apply, if any.  Only the immutable fields of the result may be read
// without f.mu.
func (f *faultInjector) pick(q *request) *faultRule {
	f.mu.Lock()
	defer f.mu.Unlock()
	var hit *faultRule
	for _, r := range f.rules {
		if !r.matches(q) {
			continue
		}
		r.Matched++
		if hit != nil || !r.active() {
			continue
		}
		if r.Probability != nil && f.rnd.Float64() >= *r.Probability {
			continue
		}
		r.Hits++
		hit = r
	}
	return hit
}

// isSOAP: SOAP calls are XML POSTs; datastore (/folder/), NFC (/nfc/) and
// guest file transfers are not, and their bodies are not read here.
func isSOAP(r *http.Request) bool {
	return r.Method == http.MethodPost && strings.Contains(r.Header.Get("Content-Type"), "xml")
}

// soapCall returns the method name (first element inside soapenv:Body) and
// its _this argument.
func soapCall(body []byte) (method string, this types.ManagedObjectReference) {
	d := stdxml.NewDecoder(bytes.NewReader(body))
	inBody := false
	for {
		tok, err := d.Token()
		if err != nil {
			return
		}
		switch t := tok.(type) {
		case stdxml.StartElement:
			if !inBody {
				inBody = t.Name.Local == "Body"
				continue
			}
			if method == "" {
				method = t.Name.Local
				continue
			}
			if t.Name.Local == "_this" {
				for _, a := range t.Attr {
					if a.Name.Local == "type" {
						this.Type = a.Value
					}
				}
				var v string
				if d.DecodeElement(&v, &t) == nil {
					this.Value = strings.TrimSpace(v)
				}
			}
			return
		case stdxml.EndElement:
			if method != "" {
				return
			}
		}
	}
}

// wrap returns next with fault injection and the /vcsim/faults API in front.
func (f *faultInjector) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == faultsPath || strings.HasPrefix(r.URL.Path, faultsPath+"/") {
			f.serveAPI(w, r)
			return
		}
		if f.empty() {
			next.ServeHTTP(w, r)
			return
		}
		q := &request{path: r.URL.Path, httpMethod: r.Method}
		if isSOAP(r) {
			body, err := ioutil.ReadAll(r.Body)
			_ = r.Body.Close()
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			r.Body = ioutil.NopCloser(bytes.NewReader(body))
			q.soap, q.body = true, body
			q.method, q.this = soapCall(body)
		}
		rule := f.pick(q)
		if rule == nil {
			next.ServeHTTP(w, r)
			return
		}
		log.Printf("fault injection: rule %d (%s) on %s", rule.ID, rule.Action, strings.TrimSpace(r.Method+" "+r.URL.Path+" "+q.method))
		f.apply(rule, q, w, r, next)
	})
}

func (f *faultInjector) apply(rule *faultRule, q *request, w http.ResponseWriter, r *http.Request, next http.Handler) {
	if rule.DelayMs > 0 && rule.Action != "task_error" {
		t := time.NewTimer(time.Duration(rule.DelayMs) * time.Millisecond)
		defer t.Stop()
		select {
		case <-t.C:
		case <-rule.release: // rule removed meanwhile: serve normally
			next.ServeHTTP(w, r)
			return
		case <-r.Context().Done(): // client gone: forget the request
			return
		}
	}
	switch rule.Action {
	case "delay":
		next.ServeHTTP(w, r)
	case "fault":
		if q.soap {
			msg := rule.message(true)
			writeSOAPFault(w, msg, rule.newFault(msg))
		} else {
			status := rule.Status
			if status == 0 {
				status = http.StatusInternalServerError
			}
			http.Error(w, rule.message(false), status)
		}
	case "drop":
		dropConnection(w)
	case "task_error":
		f.failedTask(w, rule, q)
	}
}

// dropConnection closes the client connection without a response.
func dropConnection(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*tls.Conn); ok {
		conn = tc.NetConn() // no close_notify: a cut, not a TLS goodbye
	}
	_ = conn.Close()
}

// failedTask creates a Task for the call's _this that ends in error, and
// answers the call with it; the method itself is not run.
func (f *faultInjector) failedTask(w http.ResponseWriter, rule *faultRule, q *request) {
	// CreateTask turns "FooTask" into the task name "Foo_Task"
	task := simulator.CreateTask(q.this, strings.TrimSuffix(q.method, "_Task")+"Task", nil)
	msg := rule.message(true)
	fail := []types.PropertyChange{
		{Name: "info.completeTime", Val: time.Now()},
		{Name: "info.state", Val: types.TaskInfoStateError},
		{Name: "info.error", Val: types.LocalizedMethodFault{Fault: rule.newFault(msg), LocalizedMessage: msg}},
	}
	simulator.Map.WithLock(task, func() {
		simulator.Map.Update(task, []types.PropertyChange{
			{Name: "info.startTime", Val: time.Now()},
			{Name: "info.state", Val: types.TaskInfoStateRunning},
		})
		if rule.DelayMs == 0 {
			simulator.Map.Update(task, fail)
		}
	})
	if rule.DelayMs > 0 {
		go func() {
			time.Sleep(time.Duration(rule.DelayMs) * time.Millisecond)
			fail[0].Val = time.Now()
			simulator.Map.WithLock(task, func() { simulator.Map.Update(task, fail) })
		}()
	}
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	_, _ = fmt.Fprintf(w, `%s<soapenv:Envelope xmlns:soapenc="http://schemas.xmlsoap.org/soap/encoding/" xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><%sResponse xmlns="urn:%s"><returnval type="Task">%s</returnval></%sResponse></soapenv:Body></soapenv:Envelope>`,
		xml.Header, q.method, vim25.Namespace, task.Self.Value, q.method)
}

// The SOAP fault encoding below is a copy of simulator.go's (unexported there):
// <soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>..</faultstring>
// <detail><XFault xmlns="urn:vim25" xsi:type="X">..</XFault></detail></soapenv:Fault>

type soapEnvelope struct {
	XMLName xml.Name    `xml:"soapenv:Envelope"`
	Enc     string      `xml:"xmlns:soapenc,attr"`
	Env     string      `xml:"xmlns:soapenv,attr"`
	XSD     string      `xml:"xmlns:xsd,attr"`
	XSI     string      `xml:"xmlns:xsi,attr"`
	Body    interface{} `xml:"soapenv:Body"`
}

type soapFault struct {
	XMLName xml.Name `xml:"soapenv:Fault"`
	Code    string   `xml:"faultcode"`
	String  string   `xml:"faultstring"`
	Detail  struct {
		Fault *faultDetail
	} `xml:"detail"`
}

type faultDetail struct {
	Fault types.AnyType
}

func (d *faultDetail) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	kind := reflect.TypeOf(d.Fault).Elem().Name()
	start.Name.Local = kind + "Fault"
	start.Attr = append(start.Attr,
		xml.Attr{Name: xml.Name{Local: "xmlns"}, Value: "urn:" + vim25.Namespace},
		xml.Attr{Name: xml.Name{Local: "xsi:type"}, Value: kind})
	return e.EncodeElement(d.Fault, start)
}

func writeSOAPFault(w http.ResponseWriter, msg string, fault types.BaseMethodFault) {
	f := &soapFault{Code: "ServerFaultCode", String: msg}
	f.Detail.Fault = &faultDetail{fault}
	var out bytes.Buffer
	out.WriteString(xml.Header)
	err := xml.NewEncoder(&out).Encode(&soapEnvelope{
		Enc:  "http://schemas.xmlsoap.org/soap/encoding/",
		Env:  "http://schemas.xmlsoap.org/soap/envelope/",
		XSD:  "http://www.w3.org/2001/XMLSchema",
		XSI:  "http://www.w3.org/2001/XMLSchema-instance",
		Body: struct{ Fault *soapFault }{f},
	})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusInternalServerError)
	_, _ = w.Write(out.Bytes())
}

// jsonAPI answers a request of the simulator's JSON APIs (/vcsim/...).
type jsonAPI struct{ w http.ResponseWriter }

func (a jsonAPI) reply(status int, v interface{}) {
	b, _ := json.MarshalIndent(v, "", "  ")
	a.w.Header().Set("Content-Type", "application/json")
	a.w.WriteHeader(status)
	_, _ = a.w.Write(append(b, '\n'))
}

func (a jsonAPI) fail(status int, msg string) {
	a.reply(status, map[string]string{"error": msg})
}

// body reads the request body; a read error is answered with 400.
func (a jsonAPI) body(r *http.Request) ([]byte, bool) {
	body, err := ioutil.ReadAll(r.Body)
	if err != nil {
		a.fail(http.StatusBadRequest, err.Error())
		return nil, false
	}
	return body, true
}

func (f *faultInjector) serveAPI(w http.ResponseWriter, r *http.Request) {
	api := jsonAPI{w}
	reply, fail := api.reply, api.fail

	rest := strings.Trim(strings.TrimPrefix(r.URL.Path, faultsPath), "/")
	if rest == "" {
		switch r.Method {
		case http.MethodGet:
			reply(http.StatusOK, f.list())
		case http.MethodPost:
			body, ok := api.body(r)
			if !ok {
				return
			}
			added, err := f.addJSON(body)
			if err != nil {
				fail(http.StatusBadRequest, err.Error())
				return
			}
			if d := bytes.TrimSpace(body); len(d) > 0 && d[0] == '[' {
				reply(http.StatusCreated, added)
			} else {
				reply(http.StatusCreated, added[0])
			}
		case http.MethodDelete:
			reply(http.StatusOK, map[string]int{"deleted": f.clear()})
		default:
			fail(http.StatusMethodNotAllowed, "GET, POST or DELETE")
		}
		return
	}
	id, err := strconv.Atoi(rest)
	if err != nil {
		fail(http.StatusNotFound, "no such rule: "+rest)
		return
	}
	var rule faultRule
	var ok bool
	switch r.Method {
	case http.MethodGet:
		rule, ok = f.get(id)
	case http.MethodDelete:
		rule, ok = f.remove(id)
	default:
		fail(http.StatusMethodNotAllowed, "GET or DELETE")
		return
	}
	if !ok {
		fail(http.StatusNotFound, "no such rule: "+rest)
		return
	}
	reply(http.StatusOK, rule)
}
