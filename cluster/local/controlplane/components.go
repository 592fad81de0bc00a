package controlplane

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// loopback is the only address any component listens on.
const loopback = "127.0.0.1"

// DefaultControllers are the kube-controller-manager controllers the local
// cluster runs: service accounts and their tokens, namespace deletion,
// garbage collection, endpoints for Services, the workload controllers that
// create pods, and the publishers that in-cluster clients rely on. Node IPAM,
// node lifecycle (which would taint nodes that have no kubelet), cloud and
// volume controllers are left out.
func DefaultControllers() []string {
	return []string{
		"serviceaccount-controller",
		"serviceaccount-token-controller",
		"namespace-controller",
		"garbage-collector-controller",
		"endpoints-controller",
		"endpointslice-controller",
		"endpointslice-mirroring-controller",
		"replicaset-controller",
		"deployment-controller",
		"daemonset-controller",
		"statefulset-controller",
		"job-controller",
		"pod-garbage-collector-controller",
		"clusterrole-aggregation-controller",
		"root-ca-certificate-publisher-controller",
		"service-cidr-controller",
	}
}

// ports are the loopback ports of one control plane.
type ports struct {
	etcdClient, etcdPeer, apiServer, controllerManager, scheduler int
}

// freePorts asks the kernel for distinct free loopback ports. They are
// released before the components bind them, which leaves a short window in
// which another program could take one; Start then fails with the
// component's log.
func freePorts() (ports, error) {
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	numbers := make([]int, 5)
	for i := range numbers {
		l, err := net.Listen("tcp", net.JoinHostPort(loopback, "0"))
		if err != nil {
			return ports{}, fmt.Errorf("finding a free loopback port: %w", err)
		}
		listeners = append(listeners, l)
		numbers[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports{
		etcdClient:        numbers[0],
		etcdPeer:          numbers[1],
		apiServer:         numbers[2],
		controllerManager: numbers[3],
		scheduler:         numbers[4],
	}, nil
}

func loopbackURL(scheme string, port int) string {
	return scheme + "://" + net.JoinHostPort(loopback, strconv.Itoa(port))
}

// etcdArgs runs a single-member etcd with client and peer URLs on loopback.
//
// etcd 3.4 cannot answer the API server's progress requests, so the API
// server's watch cache only learns that etcd moved on from events of its
// own resource: a watch from a resource version newer than the cache's (as
// one read straight from etcd is) waits, then fails with "Too large resource
// version". Periodic progress notifications keep every cache current.
func etcdArgs(dataDir string, p ports) []string {
	client := loopbackURL("http", p.etcdClient)
	peer := loopbackURL("http", p.etcdPeer)
	return []string{
		"--name=netpolcheck",
		"--data-dir=" + dataDir,
		"--listen-client-urls=" + client,
		"--advertise-client-urls=" + client,
		"--listen-peer-urls=" + peer,
		"--initial-advertise-peer-urls=" + peer,
		"--initial-cluster=netpolcheck=" + peer,
		"--initial-cluster-state=new",
		"--experimental-watch-progress-notify-interval=1s",
		"--logger=zap",
		"--log-outputs=stderr",
	}
}

// apiServerArgs configures kube-apiserver with client-certificate and
// service-account authentication and Node+RBAC authorization.
//
// TaintNodesByCondition is disabled: it taints every new Node not-ready until
// a kubelet reports Ready, and the local cluster's nodes have no kubelet.
//
// The endpoint reconciler is off because the API server listens on loopback
// only, and a loopback address is not a valid endpoint: the kubernetes
// Service (the first ClusterIP) exists, but has no endpoints.
//
// The API server reaches the kubelets at their InternalIP, verifies their
// serving certificates with the cluster CA and authenticates with its
// kubelet client certificate. With egressConfig (an
// EgressSelectorConfiguration), those connections go through the egress
// proxy, never through this machine's own network.
func apiServerArgs(creds credentials, p ports, serviceCIDR, egressConfig string) []string {
	args := []string{
		"--etcd-servers=" + loopbackURL("http", p.etcdClient),
		"--bind-address=" + loopback,
		"--advertise-address=" + loopback,
		"--endpoint-reconciler-type=none",
		"--secure-port=" + strconv.Itoa(p.apiServer),
		"--tls-cert-file=" + creds.apiServerCert,
		"--tls-private-key-file=" + creds.apiServerKey,
		"--client-ca-file=" + creds.caCert,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + creds.serviceAccountPub,
		"--service-account-signing-key-file=" + creds.serviceAccountKey,
		"--service-cluster-ip-range=" + serviceCIDR,
		"--authorization-mode=Node,RBAC",
		"--disable-admission-plugins=TaintNodesByCondition",
		"--allow-privileged=true",
		"--profiling=false",
		"--kubelet-preferred-address-types=InternalIP",
		"--kubelet-certificate-authority=" + creds.caCert,
		"--kubelet-client-certificate=" + creds.kubeletClientCert,
		"--kubelet-client-key=" + creds.kubeletClientKey,
	}
	if egressConfig != "" {
		args = append(args, "--egress-selector-config-file="+egressConfig)
	}
	return args
}

// writeEgressSelectorConfig writes the API server's egress selection: the
// "cluster" egress through HTTP CONNECT over the Unix socket; the control
// plane and etcd egress stay direct (loopback).
func writeEgressSelectorConfig(stateDir, socket string) (string, error) {
	config := map[string]any{
		"apiVersion": "apiserver.k8s.io/v1beta1",
		"kind":       "EgressSelectorConfiguration",
		"egressSelections": []any{map[string]any{
			"name": "cluster",
			"connection": map[string]any{
				"proxyProtocol": "HTTPConnect",
				"transport":     map[string]any{"uds": map[string]any{"udsName": socket}},
			},
		}},
	}
	data, err := json.MarshalIndent(config, "", "  ")
	if err != nil {
		return "", err
	}
	path := filepath.Join(stateDir, "egress-selector.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return "", fmt.Errorf("writing the egress selector configuration: %w", err)
	}
	return path, nil
}

// servingArgs make a component serve its health and metrics endpoints on a
// loopback port with a certificate from the cluster CA. It authenticates
// client certificates of the cluster CA and tokens (through the API server),
// and authorizes through the API server. The lookup of the front-proxy CA is
// skipped: the API server has no front proxy.
func servingArgs(creds credentials, kubeconfig string, port int) []string {
	return []string{
		"--kubeconfig=" + kubeconfig,
		"--authentication-kubeconfig=" + kubeconfig,
		"--authentication-skip-lookup=true",
		"--client-ca-file=" + creds.caCert,
		"--authorization-kubeconfig=" + kubeconfig,
		"--bind-address=" + loopback,
		"--secure-port=" + strconv.Itoa(port),
		"--tls-cert-file=" + creds.loopbackCert,
		"--tls-private-key-file=" + creds.loopbackKey,
		"--leader-elect=false",
		"--profiling=false",
	}
}

func controllerManagerArgs(creds credentials, p ports, serviceCIDR string, controllers []string) []string {
	return append(servingArgs(creds, creds.controllerManagerConf, p.controllerManager),
		"--controllers="+strings.Join(controllers, ","),
		"--use-service-account-credentials=true",
		"--service-account-private-key-file="+creds.serviceAccountKey,
		"--root-ca-file="+creds.caCert,
		"--service-cluster-ip-range="+serviceCIDR,
	)
}

// schedulerArgs lift the scheduler's client limits (50 requests a second,
// bursts of 100, by default) to the node agents': it binds every pod of a
// burst with one request each, and at the default rate the last 50 of 150
// pods created at once waited a second for their binding.
func schedulerArgs(creds credentials, p ports) []string {
	return append(servingArgs(creds, creds.schedulerKubeconfig, p.scheduler),
		"--kube-api-qps=500",
		"--kube-api-burst=1000",
	)
}

func logPath(stateDir, name string) string {
	return filepath.Join(stateDir, logsDir, name+".log")
}
