// Package nodeagent is the local cluster's kubelet: one agent per node, run
// inside the node's network namespace, realizes the pods bound to its node.
// For each pod it creates a network namespace, attaches it through the
// first CNI configuration of the node's conf dir with libcni (as a container
// runtime does), starts one process per container (see containerLaunch),
// writes the pod's status back
// (IP, phase, Ready once every server listens), and on deletion stops the
// processes, detaches the network, removes the namespace and releases the
// pod object.
//
// Pods run as in a cluster, without images. Every container is a process
// in the pod's network namespace (the node's for hostNetwork pods) and in
// its own mount namespace (see mounts.go), whose root is this machine's with
// the container's files bind-mounted at their paths: its volumes (see
// volumes.go; the projected service-account token included), the pod's
// /etc/resolv.conf and /etc/hosts as the kubelet writes them, and the files
// of its image, from the table in images.go: an image maps to binaries this
// project builds (agnhost at /agnhost, CoreDNS at /coredns, the probe agent
// and the reference CNI at / for the project's own image). The command is
// composed from the container's command and args and the image's entrypoint
// and cmd, and runs with the container's environment only (env.go): PATH,
// HOSTNAME, the kubernetes Service's variables, envFrom and env. Its own UTS
// namespace carries the pod's hostname.
//
// An image nothing maps fails as a kubelet's pull would: the pod stays
// Pending, the container waiting with reason ErrImagePull and a message that
// says how to map it. One stand-in rule remains: a container of an unmapped
// image that declares ports is stood in for by a probe server on those
// ports, answering with the pod's identity, so that a pod of any image takes
// part in the network as it would in a cluster; an event (reason StandIn)
// says so.
//
// The agent can also forward the API server into the node's namespace
// (Config.APIForward), for node components that cannot open their
// connections in the control plane's namespace themselves, and serve the
// node's kubelet API (Config.KubeletAPI, package kubeletapi): exec and
// attach enter the namespaces of the container's process with nsenter,
// port-forward connects to localhost in the pod's network namespace, and
// container output is kept in CRI log files, one per run of a container
// (LogDir/NAMESPACE_NAME_UID/CONTAINER/RESTARTS.log), which --previous
// reads.
package nodeagent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"sync"
	"time"

	"github.com/containernetworking/cni/libcni"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// Config configures an agent.
type Config struct {
	NodeName string
	// NodeIP is the node's address: hostNetwork pods get it, and it is every
	// pod's hostIP.
	NodeIP string
	// PodNetnsPrefix starts the name of every pod namespace of this node.
	PodNetnsPrefix string
	// CNIConfDir holds the node's network configurations: the first in
	// lexical order attaches pods (see netConf); until there is one the node
	// is NotReady. CNIBinDir holds the plugins; CNICacheDir is libcni's
	// cache.
	CNIConfDir  string
	CNIBinDir   string
	CNICacheDir string
	// ProbeBinary is the local netpolcheck-probe.
	ProbeBinary string
	// LogDir receives one log file per container.
	LogDir string
	// Binaries are this machine's builds of the files of the mapped images,
	// by name (BinaryProbe, BinaryAgnhost, BinaryCoreDNS, ...; see images).
	// ProbeBinary is added as BinaryProbe when missing.
	Binaries map[string]string
	// PodsDir holds each pod's directory: its volumes, resolv.conf and
	// hosts, and the root of each of its containers.
	PodsDir string
	// ContainerInit is the command line of the container shim
	// (containerinit.Run; the spec file is appended), such as
	// netpolcheck-container-init.
	ContainerInit []string
	// ClusterDNS is the cluster DNS server's address (empty: none), and
	// ClusterDomain the cluster's DNS domain (default cluster.local).
	ClusterDNS    string
	ClusterDomain string
	// APIForward, when set, forwards the API server into the node's
	// namespace while the agent runs.
	APIForward *APIForward
	// KubeletAPI, when set, is the node's kubelet API, served while the
	// agent runs.
	KubeletAPI *KubeletAPI
	// Workers realize pods in parallel (default 32). A pod's start mostly
	// waits (for the API server, the CNI plugin, its servers to listen): with
	// 8, 75 pods bound to one node at once waited up to 5 s in the queue.
	Workers int
	Log     *slog.Logger
}

// Agent realizes the pods of one node.
type Agent struct {
	cfg    Config
	client kubernetes.Interface
	cni    *libcni.CNIConfig
	queue  workqueue.TypedRateLimitingInterface[string]
	lister func(key string) (*corev1.Pod, bool, error)

	// api is the kubernetes Service, read when Run starts.
	api apiService

	mu   sync.Mutex
	pods map[string]*podRuntime // by namespace/name

	// conf is the node's network configuration once found (netConf).
	confMu sync.Mutex
	conf   *libcni.NetworkConfigList
}

// New checks the configuration and returns an agent.
func New(client kubernetes.Interface, cfg Config) (*Agent, error) {
	if cfg.NodeName == "" || cfg.PodNetnsPrefix == "" || cfg.ProbeBinary == "" || cfg.LogDir == "" || cfg.PodsDir == "" || len(cfg.ContainerInit) == 0 {
		return nil, errors.New("node agent: node name, pod namespace prefix, probe binary, log dir, pods dir and container init are required")
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 32
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	cfg.Binaries = maps.Clone(cfg.Binaries)
	if cfg.Binaries == nil {
		cfg.Binaries = map[string]string{}
	}
	if _, ok := cfg.Binaries[BinaryProbe]; !ok {
		cfg.Binaries[BinaryProbe] = cfg.ProbeBinary
	}
	if cfg.ClusterDomain == "" {
		cfg.ClusterDomain = "cluster.local"
	}
	if _, err := os.Stat(cfg.ProbeBinary); err != nil {
		return nil, fmt.Errorf("node agent: probe binary: %w", err)
	}
	if cfg.CNIConfDir == "" {
		return nil, errors.New("node agent: the CNI configuration directory is required")
	}
	if err := os.MkdirAll(cfg.LogDir, 0o755); err != nil {
		return nil, fmt.Errorf("node agent: %w", err)
	}
	return &Agent{
		cfg:    cfg,
		client: client,
		cni:    libcni.NewCNIConfigWithCacheDir([]string{cfg.CNIBinDir}, cfg.CNICacheDir, nil),
		queue:  workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]()),
		pods:   map[string]*podRuntime{},
	}, nil
}

// Run watches the node's pods until ctx ends, then stops every pod it runs
// (their API objects stay: the node is going away, not the pods).
func (a *Agent) Run(ctx context.Context) error {
	if f := a.cfg.APIForward; f != nil {
		if err := f.serve(ctx, a.cfg.Log.Warn); err != nil {
			return err
		}
	}
	if a.cfg.KubeletAPI != nil {
		if err := a.serveKubeletAPI(ctx); err != nil {
			return err
		}
	}
	factory := informers.NewSharedInformerFactoryWithOptions(a.client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", a.cfg.NodeName).String()
		}))
	informer := factory.Core().V1().Pods().Informer()
	enqueue := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			a.queue.Add(key)
		}
	}
	if _, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
		DeleteFunc: enqueue,
	}); err != nil {
		return fmt.Errorf("watching pods: %w", err)
	}
	a.lister = func(key string) (*corev1.Pod, bool, error) {
		obj, ok, err := informer.GetIndexer().GetByKey(key)
		if err != nil || !ok {
			return nil, ok, err
		}
		return obj.(*corev1.Pod), true, nil
	}
	factory.Start(ctx.Done())
	var err error
	if !cache.WaitForCacheSync(ctx.Done(), informer.HasSynced) {
		return fmt.Errorf("pod informer of %s did not sync", a.cfg.NodeName)
	}
	if err := a.heartbeat(ctx); err != nil {
		return err
	}
	if a.api, err = kubernetesService(ctx, a.client); err != nil {
		return err
	}
	a.cfg.Log.Info("node agent running", "node", a.cfg.NodeName)
	var wg sync.WaitGroup
	for range a.cfg.Workers {
		wg.Go(func() {
			for a.next(ctx) {
			}
		})
	}
	<-ctx.Done()
	a.queue.ShutDown()
	wg.Wait()
	factory.Shutdown()
	return a.stopAll()
}

func (a *Agent) next(ctx context.Context) bool {
	key, quit := a.queue.Get()
	if quit {
		return false
	}
	defer a.queue.Done(key)
	if err := a.sync(ctx, key); err != nil {
		if ctx.Err() != nil {
			return true
		}
		a.cfg.Log.Error("syncing pod", "pod", key, "err", err)
		a.queue.AddRateLimited(key)
		return true
	}
	a.queue.Forget(key)
	return true
}

// sync brings one pod to its desired state.
func (a *Agent) sync(ctx context.Context, key string) error {
	pod, exists, err := a.lister(key)
	if err != nil {
		return err
	}
	a.mu.Lock()
	rt := a.pods[key]
	a.mu.Unlock()
	switch {
	case !exists || (rt != nil && rt.uid != pod.UID):
		// Gone, or replaced by a pod of the same name: stop what ran.
		if rt != nil {
			if err := a.stopPod(ctx, key, rt); err != nil {
				return err
			}
		}
		if exists {
			a.queue.Add(key)
		}
		return nil
	case pod.DeletionTimestamp != nil:
		if rt != nil {
			if err := a.stopPod(ctx, key, rt); err != nil {
				return err
			}
		}
		return a.release(ctx, pod)
	case rt == nil:
		return a.startPod(ctx, key, pod)
	}
	return nil
}

// release removes the pod object once its containers are gone, as the
// kubelet does after a graceful deletion.
func (a *Agent) release(ctx context.Context, pod *corev1.Pod) error {
	zero := int64(0)
	err := a.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: &zero,
		Preconditions:      &metav1.Preconditions{UID: &pod.UID},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("releasing pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	return nil
}

func (a *Agent) stopAll() error {
	a.mu.Lock()
	pods := a.pods
	a.pods = map[string]*podRuntime{}
	a.mu.Unlock()
	var errs []error
	for key, rt := range pods {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		errs = append(errs, a.teardown(ctx, key, rt))
		cancel()
	}
	return errors.Join(errs...)
}

func (a *Agent) stopPod(ctx context.Context, key string, rt *podRuntime) error {
	if err := a.teardown(ctx, key, rt); err != nil {
		return err
	}
	a.mu.Lock()
	if a.pods[key] == rt {
		delete(a.pods, key)
	}
	a.mu.Unlock()
	return nil
}

// podKey is the informer key of a pod.
func podKey(namespace, name string) string { return namespace + "/" + name }

// uidShort is a short stable token of a pod UID for names.
func uidShort(uid types.UID) string {
	s := string(uid)
	if len(s) > 8 {
		s = s[:8]
	}
	return s
}
