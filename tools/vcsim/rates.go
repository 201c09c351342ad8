// Data-rate model for the vcsim front-end (a test tool; see main.go).
//
// The simulator moves every byte at local-disk speed, whatever the path.  On
// vCenter the path decides: an HTTP/NFC upload runs at about 160 MB/s, a
// full copy between datastores goes through the host data mover (about
// 500-700 MB/s), one within a VAAI datastore is offloaded (1-7 GB/s), and a
// linked clone copies nothing.  This model caps the simulator's rates so
// that a benchmark can reproduce those ratios, scaled down.  All rates are in
// MiB/s; 0 (the default) means no cap:
//
//	upload_mbps      HTTP upload bodies on /nfc/ (HttpNfcLease) and /folder/
//	                 (datastore PUT/POST) are read at most this fast, per
//	                 request
//	xds_copy_mbps    a task that copies disk data between two datastores
//	                 (full CloneVM_Task, RelocateVM_Task, CopyVirtualDisk_Task,
//	                 CopyDatastoreFile_Task) completes no earlier than
//	                 bytes/rate after it started; it copies as before, then
//	                 stays "running" for the rest of that time
//	local_copy_mbps  the same for copies within one datastore
//
// Linked clones (diskMoveType createNewChildDiskBacking) copy nothing, so
// they are never held.  Each request or task has the full rate to itself:
// concurrent transfers do not share a bandwidth.
//
// Set at start-up with -upload-mbps, -xds-copy-mbps and -local-copy-mbps, and
// at run time over JSON on the same (loopback) listener:
//
//	GET    /vcsim/rates   the rates and counters
//	POST   /vcsim/rates   change some or all: {"upload_mbps": 16}; answers
//	                      the new state (PUT does the same)
//	DELETE /vcsim/rates   all rates to 0 (model off) and counters to 0
//
// A new upload rate applies to the requests that start after it (a request
// that started paced follows later changes; one that started unpaced stays
// so); a new copy rate to the tasks that finish copying after it.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"
)

const (
	ratesPath = "/vcsim/rates"
	mib       = 1 << 20
)

type rateSettings struct {
	UploadMBps    float64 `json:"upload_mbps"`
	XdsCopyMBps   float64 `json:"xds_copy_mbps"`
	LocalCopyMBps float64 `json:"local_copy_mbps"`
}

type rateCounters struct {
	UploadsPaced   int64   `json:"uploads_paced"`    // upload requests whose body was paced
	UploadBytes    int64   `json:"upload_bytes"`     // bytes read from those bodies
	CopyTasks      int64   `json:"copy_tasks"`       // tasks that copied disk data
	LocalCopyBytes int64   `json:"local_copy_bytes"` // by them, within one datastore
	XdsCopyBytes   int64   `json:"xds_copy_bytes"`   // by them, between datastores
	CopyTasksHeld  int64   `json:"copy_tasks_held"`  // tasks given a minimum duration
	CopyHoldSecs   float64 `json:"copy_hold_seconds"`
}

type rateState struct {
	rateSettings
	Counters rateCounters `json:"counters"`
}

type rateModel struct {
	mu sync.Mutex
	s  rateSettings
	c  rateCounters
}

func (s *rateSettings) validate() error {
	for _, v := range []float64{s.UploadMBps, s.XdsCopyMBps, s.LocalCopyMBps} {
		if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
			return errors.New("rates are MiB/s: 0 (no cap) or more")
		}
	}
	return nil
}

func newRateModel(s rateSettings) (*rateModel, error) {
	if err := s.validate(); err != nil {
		return nil, err
	}
	return &rateModel{s: s}, nil
}

func (m *rateModel) state() rateState {
	m.mu.Lock()
	defer m.mu.Unlock()
	return rateState{m.s, m.c}
}

func (m *rateModel) uploadRate() float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.s.UploadMBps
}

// copyHold is simulator.DiskCopyHold: how long a task that copied local
// bytes within one datastore and cross bytes between datastores must take.
func (m *rateModel) copyHold(local, cross int64) time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.c.CopyTasks++
	m.c.LocalCopyBytes += local
	m.c.XdsCopyBytes += cross
	secs := 0.0
	if m.s.LocalCopyMBps > 0 {
		secs += float64(local) / (m.s.LocalCopyMBps * mib)
	}
	if m.s.XdsCopyMBps > 0 {
		secs += float64(cross) / (m.s.XdsCopyMBps * mib)
	}
	if secs <= 0 {
		return 0
	}
	m.c.CopyTasksHeld++
	m.c.CopyHoldSecs += secs
	return time.Duration(secs * float64(time.Second))
}

func isUpload(r *http.Request) bool {
	return (r.Method == http.MethodPut || r.Method == http.MethodPost) &&
		(strings.HasPrefix(r.URL.Path, "/nfc/") || strings.HasPrefix(r.URL.Path, "/folder/"))
}

// wrap serves the /vcsim/rates API and paces upload bodies, in front of next.
// With no upload rate set, requests pass through untouched.
func (m *rateModel) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == ratesPath || strings.HasPrefix(r.URL.Path, ratesPath+"/") {
			m.serveAPI(w, r)
			return
		}
		if r.Body != nil && r.Body != http.NoBody && isUpload(r) && m.uploadRate() > 0 {
			m.mu.Lock()
			m.c.UploadsPaced++
			m.mu.Unlock()
			r.Body = &pacedBody{ReadCloser: r.Body, model: m}
		}
		next.ServeHTTP(w, r)
	})
}

// pacedBody reads its body no faster than the model's upload rate: after
// each read it sleeps until the bytes read so far fit the rate since the
// first read.  A change of rate restarts the count.
type pacedBody struct {
	io.ReadCloser
	model *rateModel
	mbps  float64
	start time.Time
	n     int64
}

func (b *pacedBody) Read(p []byte) (int, error) {
	mbps := b.model.uploadRate()
	if mbps <= 0 {
		b.start = time.Time{}
		n, err := b.ReadCloser.Read(p)
		b.count(n)
		return n, err
	}
	if mbps != b.mbps || b.start.IsZero() {
		b.mbps, b.start, b.n = mbps, time.Now(), 0
	}
	rate := mbps * mib // bytes per second
	if max := int(rate / 20); max >= 1 && len(p) > max {
		p = p[:max] // at most ~50 ms worth of data a read
	}
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	b.count(n)
	due := time.Duration(float64(b.n) / rate * float64(time.Second))
	if d := due - time.Since(b.start); d > 5*time.Millisecond || (d > 0 && err != nil) {
		time.Sleep(d)
	}
	return n, err
}

func (b *pacedBody) count(n int) {
	if n > 0 {
		b.model.mu.Lock()
		b.model.c.UploadBytes += int64(n)
		b.model.mu.Unlock()
	}
}

// update applies a JSON object with some of the settings, all or none.
func (m *rateModel) update(data []byte) (rateState, error) {
	var in struct {
		UploadMBps    *float64 `json:"upload_mbps"`
		XdsCopyMBps   *float64 `json:"xds_copy_mbps"`
		LocalCopyMBps *float64 `json:"local_copy_mbps"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return rateState{}, fmt.Errorf("invalid JSON (an object with upload_mbps, xds_copy_mbps, local_copy_mbps): %s", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.s
	for _, f := range []struct {
		in  *float64
		out *float64
	}{{in.UploadMBps, &s.UploadMBps}, {in.XdsCopyMBps, &s.XdsCopyMBps}, {in.LocalCopyMBps, &s.LocalCopyMBps}} {
		if f.in != nil {
			*f.out = *f.in
		}
	}
	if err := s.validate(); err != nil {
		return rateState{}, err
	}
	m.s = s
	return rateState{m.s, m.c}, nil
}

func (m *rateModel) reset() rateState {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.s, m.c = rateSettings{}, rateCounters{}
	return rateState{m.s, m.c}
}

func (m *rateModel) serveAPI(w http.ResponseWriter, r *http.Request) {
	api := jsonAPI{w}
	reply, fail := api.reply, api.fail

	if strings.Trim(strings.TrimPrefix(r.URL.Path, ratesPath), "/") != "" {
		fail(http.StatusNotFound, "not found: "+r.URL.Path)
		return
	}
	switch r.Method {
	case http.MethodGet:
		reply(http.StatusOK, m.state())
	case http.MethodPost, http.MethodPut:
		body, ok := api.body(r)
		if !ok {
			return
		}
		st, err := m.update(body)
		if err != nil {
			fail(http.StatusBadRequest, err.Error())
			return
		}
		reply(http.StatusOK, st)
	case http.MethodDelete:
		reply(http.StatusOK, m.reset())
	default:
		fail(http.StatusMethodNotAllowed, "GET, POST (or PUT) or DELETE")
	}
}
