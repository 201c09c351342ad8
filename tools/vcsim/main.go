// vcsim front-end for the govmomi 0.24 simulator library shipped by Debian
// (golang-github-vmware-govmomi-dev drops upstream's vcsim/ and govc/ main
// packages but keeps the simulator library and its optional endpoints).
// Flags follow upstream vcsim; -ds-type and -faults are additions, and so are
// the fault-injection API under /vcsim/faults (faults.go) and the data-rate
// model (-upload-mbps, -xds-copy-mbps, -local-copy-mbps, /vcsim/rates; rates.go).
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"io/ioutil"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/simulator/esx"

	// optional SOAP/REST endpoints (PBM is used by cinder's VMDK driver)
	_ "github.com/vmware/govmomi/lookup/simulator"
	_ "github.com/vmware/govmomi/pbm/simulator"
	_ "github.com/vmware/govmomi/sts/simulator"
	_ "github.com/vmware/govmomi/vapi/simulator"
)

func main() {
	model := simulator.VPX()

	flag.IntVar(&model.Datacenter, "dc", model.Datacenter, "Number of datacenters")
	flag.IntVar(&model.Cluster, "cluster", model.Cluster, "Number of clusters")
	flag.IntVar(&model.ClusterHost, "host", model.ClusterHost, "Number of hosts per cluster")
	flag.IntVar(&model.Host, "standalone-host", model.Host, "Number of standalone hosts")
	flag.IntVar(&model.Datastore, "ds", model.Datastore, "Number of local datastores")
	flag.IntVar(&model.Machine, "vm", model.Machine, "Number of virtual machines per resource pool")
	flag.IntVar(&model.Pool, "pool", model.Pool, "Number of resource pools per compute resource")
	flag.IntVar(&model.App, "app", model.App, "Number of virtual apps per compute resource")
	flag.IntVar(&model.Pod, "pod", model.Pod, "Number of storage pods per datacenter")
	flag.IntVar(&model.Portgroup, "pg", model.Portgroup, "Number of port groups")
	flag.IntVar(&model.PortgroupNSX, "pg-nsx", model.PortgroupNSX, "Number of NSX backed port groups")
	flag.IntVar(&model.OpaqueNetwork, "nsx", model.OpaqueNetwork, "Number of NSX backed opaque networks")
	flag.IntVar(&model.Folder, "folder", model.Folder, "Number of folders")
	flag.BoolVar(&model.Autostart, "autostart", model.Autostart, "Autostart model created VMs")
	apiVersion := flag.String("api-version", model.ServiceContent.About.ApiVersion, "API version")
	isESX := flag.Bool("esx", false, "Simulate standalone ESX")
	isTLS := flag.Bool("tls", true, "Enable TLS")
	cert := flag.String("tlscert", "", "Path to TLS certificate file")
	key := flag.String("tlskey", "", "Path to TLS key file")
	env := flag.String("E", "-", "Output vcsim variables to the given fifo or stdout")
	listen := flag.String("l", "127.0.0.1:8989", "Listen address for vcsim")
	user := flag.String("username", "", "Login username (any username allowed by default)")
	pass := flag.String("password", "", "Login password (any password allowed by default)")
	flag.BoolVar(&simulator.Trace, "trace", simulator.Trace, "Trace SOAP to -trace-file")
	trace := flag.String("trace-file", "", "Trace output file (defaults to stderr)")
	stdinExit := flag.Bool("stdinexit", false, "Press any key to exit")
	dir := flag.String("load", "", "Load model from directory")
	dsType := flag.String("ds-type", "", "Override summary.type of the datastores (e.g. VMFS; vcsim says OTHER, which cinder's datastore selector rejects)")
	flag.IntVar(&model.DelayConfig.Delay, "delay", model.DelayConfig.Delay, "Method response delay (ms) across all methods")
	methodDelay := flag.String("method-delay", "", "Delay per method on the form 'method1:delay1,method2:delay2...'")
	flag.Float64Var(&model.DelayConfig.DelayJitter, "delay-jitter", model.DelayConfig.DelayJitter, "Delay jitter coefficient of variation (tip: 0.5 is a good starting value)")
	faultsFile := flag.String("faults", "", "JSON file with fault-injection rules to load at start-up (a list of rules as POSTed to /vcsim/faults)")
	var rateFlags rateSettings
	flag.Float64Var(&rateFlags.UploadMBps, "upload-mbps", 0, "Read HTTP upload bodies on /nfc/ and /folder/ at most this fast, MiB/s per request (0: no cap; run time: /vcsim/rates)")
	flag.Float64Var(&rateFlags.XdsCopyMBps, "xds-copy-mbps", 0, "Disk copies between datastores (clone, relocate, CopyVirtualDisk) take at least bytes/rate, MiB/s (0: no cap)")
	flag.Float64Var(&rateFlags.LocalCopyMBps, "local-copy-mbps", 0, "The same for disk copies within one datastore, MiB/s (0: no cap)")
	flag.Parse()

	rates, err := newRateModel(rateFlags)
	if err != nil {
		log.Fatalf("-upload-mbps, -xds-copy-mbps, -local-copy-mbps: %s", err)
	}
	simulator.DiskCopyHold = rates.copyHold

	faults := newFaultInjector()
	if *faultsFile != "" {
		data, err := ioutil.ReadFile(*faultsFile)
		if err == nil {
			_, err = faults.addJSON(data)
		}
		if err != nil {
			log.Fatalf("-faults: %s", err)
		}
	}

	if *trace != "" {
		f, err := os.Create(*trace)
		if err != nil {
			log.Fatal(err)
		}
		simulator.TraceFile = f
		simulator.Trace = true
	}

	if *methodDelay != "" {
		m := make(map[string]int)
		for _, s := range strings.Split(*methodDelay, ",") {
			kv := strings.Split(strings.TrimSpace(s), ":")
			if len(kv) != 2 {
				log.Fatal("Incorrect method delay format.")
			}
			n, err := strconv.Atoi(kv[1])
			if err != nil {
				log.Fatalf("Incorrect format of method-delay argument: %s", err)
			}
			m[kv[0]] = n
		}
		model.DelayConfig.MethodDelay = m
	}

	u := &url.URL{Host: *listen}
	if *user != "" {
		u.User = url.UserPassword(*user, *pass)
	}

	addr, port, err := net.SplitHostPort(*listen)
	if err != nil {
		log.Fatal(err)
	}
	esx.HostSystem.Summary.ManagementServerIp = addr
	if n, err := strconv.Atoi(port); err == nil && n != 0 {
		esx.HostSystem.Summary.Config.Port = int32(n)
	}

	if *isESX {
		opts := model
		model = simulator.ESX()
		model.Datastore = opts.Datastore
		model.Machine = opts.Machine
		model.Autostart = opts.Autostart
		model.DelayConfig = opts.DelayConfig
	}
	model.ServiceContent.About.ApiVersion = *apiVersion
	model.ServiceContent.About.FullName += " (govmomi simulator)"
	model.ServiceContent.About.OsType = runtime.GOOS + "-" + runtime.GOARCH

	if *dir == "" {
		err = model.Create()
	} else {
		err = model.Load(*dir)
	}
	if err != nil {
		log.Fatal(err)
	}

	if *dsType != "" {
		for _, e := range simulator.Map.All("Datastore") {
			e.(*simulator.Datastore).Summary.Type = *dsType
		}
	}

	model.Service.RegisterEndpoints = true
	model.Service.Listen = u
	model.Service.ServeMux = http.NewServeMux()
	if *isTLS {
		model.Service.TLS = new(tls.Config)
		if *cert != "" {
			c, err := tls.LoadX509KeyPair(*cert, *key)
			if err != nil {
				log.Fatal(err)
			}
			model.Service.TLS.Certificates = []tls.Certificate{c}
		}
	}

	// Fault injection (faults.go) wraps the simulator's handler, and the rate
	// model (rates.go) wraps both (its API is not subject to fault rules;
	// with no upload rate set it passes requests through).  NewServer
	// starts serving before it returns, so the handler can only be replaced
	// afterwards; with TLS, each handshake waits until that is done.
	ready := make(chan struct{})
	if model.Service.TLS != nil {
		model.Service.TLS.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
			<-ready
			return nil, nil
		}
	}
	s := model.Service.NewServer()
	s.Config.Handler = rates.wrap(faults.wrap(s.Config.Handler))
	close(ready)

	out := os.Stdout
	if *env != "-" {
		out, err = os.OpenFile(*env, os.O_WRONLY, 0)
		if err != nil {
			log.Fatal(err)
		}
	}
	fmt.Fprintf(out, "export GOVC_URL=%s GOVC_SIM_PID=%d\n", s.URL, os.Getpid())
	if out != os.Stdout {
		_ = out.Close()
	}

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	if *stdinExit {
		fmt.Println("Press any key to exit")
		go func() {
			_, _ = os.Stdin.Read(make([]byte, 1))
			sig <- syscall.SIGTERM
		}()
	}
	<-sig

	faults.clear() // releases requests held by delay rules
	model.Remove() // removes the temporary datastore directories
	s.Close()
}
