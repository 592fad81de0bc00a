package nodeagent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/netpolcheck/netpolcheck/cluster/local/containerinit"
)

// dnsPod is a pod like the local cluster's CoreDNS, plus the service-account
// volume the API's admission adds to every pod.
func dnsPod() *corev1.Pod {
	expiry := int64(3607)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "coredns-1", Namespace: "kube-system", UID: "uid-1"},
		Spec: corev1.PodSpec{
			ServiceAccountName: "coredns",
			Containers: []corev1.Container{{
				Name: "coredns", Image: "registry.k8s.io/coredns/coredns:v1.15.0", Args: []string{"-conf", "/etc/coredns/Corefile"},
				WorkingDir: "/etc/coredns",
				VolumeMounts: []corev1.VolumeMount{
					{Name: "config", MountPath: "/etc/coredns", ReadOnly: true},
					{Name: "auth", MountPath: "/etc/coredns/auth/"},
					{Name: "kube-api-access", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount", ReadOnly: true},
				},
			}},
			Volumes: []corev1.Volume{
				{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
					LocalObjectReference: corev1.LocalObjectReference{Name: "coredns"}}}},
				{Name: "auth", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "coredns-auth",
					Items: []corev1.KeyToPath{{Key: "kubeconfig", Path: "kubeconfig"}}}}},
				{Name: "kube-api-access", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
					{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: &expiry}},
					{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"},
						Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
					{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{
						{Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}}}},
				}}}},
				{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			},
		},
	}
}

// tokenClient answers TokenRequests with a token naming the bound pod and
// records them.
func tokenClient(requests *[]*authenticationv1.TokenRequest, objects ...runtime.Object) *fake.Clientset {
	client := fake.NewClientset(objects...)
	client.PrependReactor("create", "serviceaccounts", func(action k8stesting.Action) (bool, runtime.Object, error) {
		req := action.(k8stesting.CreateAction).GetObject().(*authenticationv1.TokenRequest)
		*requests = append(*requests, req)
		req = req.DeepCopy()
		req.Status.Token = "token-for-" + req.Spec.BoundObjectRef.Name
		req.Status.ExpirationTimestamp = metav1.NewTime(time.Now().Add(time.Hour))
		return true, req, nil
	})
	return client
}

func dnsObjects() []runtime.Object {
	return []runtime.Object{
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "coredns", Namespace: "kube-system"}, Data: map[string]string{"Corefile": ".:53 {}"}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kube-root-ca.crt", Namespace: "kube-system"}, Data: map[string]string{"ca.crt": "CA PEM"}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "coredns-auth", Namespace: "kube-system"},
			Data: map[string][]byte{"kubeconfig": []byte("apiVersion: v1"), "other": []byte("x")}},
	}
}

func TestPrepareVolumes(t *testing.T) {
	var requests []*authenticationv1.TokenRequest
	a := &Agent{client: tokenClient(&requests, dnsObjects()...)}
	pod := dnsPod()
	dir := t.TempDir()
	vols, err := a.prepareVolumes(context.Background(), pod, dir)
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		"config/Corefile":           ".:53 {}",
		"auth/kubeconfig":           "apiVersion: v1",
		"kube-api-access/token":     "token-for-coredns-1",
		"kube-api-access/ca.crt":    "CA PEM",
		"kube-api-access/namespace": "kube-system",
	} {
		got, err := os.ReadFile(filepath.Join(dir, path))
		if err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %q", path, got, err, want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "auth", "other")); !os.IsNotExist(err) {
		t.Errorf("a key not in the items was written: %v", err)
	}
	if st, err := os.Stat(vols.paths["scratch"]); err != nil || !st.IsDir() {
		t.Errorf("emptyDir: %v", err)
	}
	if len(requests) != 1 || requests[0].Spec.BoundObjectRef.UID != "uid-1" || *requests[0].Spec.ExpirationSeconds != 3607 {
		t.Errorf("token requests = %+v, want one bound to the pod for 3607s", requests)
	}
	var synced []string
	for _, sv := range vols.synced {
		synced = append(synced, sv.name)
	}
	if !slices.Equal(synced, []string{"config", "auth", "kube-api-access"}) {
		t.Errorf("volumes kept in sync: %v, want config, auth, kube-api-access", synced)
	}

	// A missing ConfigMap is an error unless the volume is optional.
	pod.Spec.Volumes[0].ConfigMap.Name = "missing"
	if _, err := a.prepareVolumes(context.Background(), pod, t.TempDir()); err == nil {
		t.Error("a missing ConfigMap was materialized")
	}
	optional := true
	pod.Spec.Volumes[0].ConfigMap.Optional = &optional
	if _, err := a.prepareVolumes(context.Background(), pod, t.TempDir()); err != nil {
		t.Errorf("an optional missing ConfigMap: %v", err)
	}
}

func TestRefreshAfter(t *testing.T) {
	if got := refreshAfter(time.Hour); got != 48*time.Minute {
		t.Errorf("refreshAfter(1h) = %s, want 48m", got)
	}
	if got := refreshAfter(48 * time.Hour); got != 24*time.Hour {
		t.Errorf("refreshAfter(48h) = %s, want 24h", got)
	}
}

func TestContainerLaunch(t *testing.T) {
	var requests []*authenticationv1.TokenRequest
	a := &Agent{client: tokenClient(&requests, dnsObjects()...), api: apiService{host: "10.96.0.1", port: 443},
		cfg: Config{ClusterDNS: "10.96.0.10", ClusterDomain: "cluster.local",
			Binaries: map[string]string{BinaryCoreDNS: "/cache/coredns", BinaryAgnhost: "/cache/agnhost", BinaryProbe: "/bin/probe"}}}
	pod := dnsPod()
	pod.Status.PodIPs = []corev1.PodIP{{IP: "10.0.0.3"}}
	dir := t.TempDir()
	vols, err := a.prepareVolumes(context.Background(), pod, filepath.Join(dir, "volumes"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := a.containerLaunch(context.Background(), pod, &pod.Spec.Containers[0], vols, dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"/coredns", "-conf", "/etc/coredns/Corefile"}; !slices.Equal(l.spec.Argv, want) {
		t.Errorf("argv = %q, want %q (the image's entrypoint, run as written)", l.spec.Argv, want)
	}
	want := []containerinit.Mount{
		{Source: "/cache/coredns", Target: "/coredns", ReadOnly: true},
		{Source: filepath.Join(dir, "volumes", "config"), Target: "/etc/coredns", ReadOnly: true},
		{Source: filepath.Join(dir, "volumes", "auth"), Target: "/etc/coredns/auth"},
		{Source: filepath.Join(dir, "volumes", "kube-api-access"), Target: "/var/run/secrets/kubernetes.io/serviceaccount", ReadOnly: true},
		{Source: filepath.Join(dir, "resolv.conf"), Target: "/etc/resolv.conf", ReadOnly: true},
		{Source: filepath.Join(dir, "hosts"), Target: "/etc/hosts", ReadOnly: true},
	}
	if !slices.Equal(l.spec.Mounts, want) {
		t.Errorf("mounts =\n%+v\nwant\n%+v", l.spec.Mounts, want)
	}
	if l.spec.Dir != "/etc/coredns" || l.spec.Hostname != "coredns-1" || l.spec.Root != filepath.Join(dir, "containers", "coredns", "root") || l.standIn {
		t.Errorf("launch = %+v", l)
	}

	// agnhost runs as written in a shell, its binary at /agnhost.
	agnhost := &corev1.Container{Name: "a", Image: "registry.k8s.io/e2e-test-images/agnhost:2.53",
		Command: []string{"/bin/bash", "-c"}, Args: []string{"/agnhost serve-hostname --port $(PORT)"},
		Env: []corev1.EnvVar{{Name: "PORT", Value: "9376"}}}
	l, err = a.containerLaunch(context.Background(), pod, agnhost, vols, dir)
	if err != nil || !slices.Equal(l.spec.Argv, []string{"/bin/bash", "-c", "/agnhost serve-hostname --port 9376"}) ||
		!slices.Contains(l.spec.Mounts, containerinit.Mount{Source: "/cache/agnhost", Target: "/agnhost", ReadOnly: true}) {
		t.Errorf("agnhost: %+v, %v", l.spec, err)
	}

	// An unmapped image with ports gets a probe server; without, it fails.
	web := &corev1.Container{Name: "web", Image: "nginx:1.27", Ports: []corev1.ContainerPort{{ContainerPort: 80}}}
	l, err = a.containerLaunch(context.Background(), pod, web, vols, dir)
	if wantArgv := []string{"/bin/probe", "serve", "--identity", "kube-system/coredns-1", "--container", "web", "--port", "80/TCP"}; err != nil || !l.standIn || !l.waitsForReady || !slices.Equal(l.spec.Argv, wantArgv) {
		t.Errorf("stand-in: %+v, %v", l, err)
	}
	web.Ports = nil
	if _, err := a.containerLaunch(context.Background(), pod, web, vols, dir); !errors.Is(err, errImageNotMapped) {
		t.Errorf("unmapped image without ports: %v, want errImageNotMapped", err)
	}
}

// A hostPath volume of no type whose path does not exist is created as a
// directory, as containerd's CRI does before bind-mounting it (kube-router's
// manifests mount /lib/modules so, and a machine without loadable modules
// has none); the typed ones are checked or created by their type.
func TestHostPathTypes(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	typed := func(typ corev1.HostPathType) *corev1.HostPathType { return &typ }
	for _, tc := range []struct {
		path    string
		typ     *corev1.HostPathType
		wantDir bool
		wantErr string
	}{
		{path: filepath.Join(dir, "unset", "modules"), wantDir: true},
		{path: file},
		{path: filepath.Join(dir, "or-create"), typ: typed(corev1.HostPathDirectoryOrCreate), wantDir: true},
		{path: filepath.Join(dir, "missing"), typ: typed(corev1.HostPathDirectory), wantErr: "no such file"},
		{path: file, typ: typed(corev1.HostPathDirectory), wantErr: "is not a directory"},
	} {
		err := hostPath(&corev1.HostPathVolumeSource{Path: tc.path, Type: tc.typ})
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("hostPath %s (%v): err %v, want %q", tc.path, tc.typ, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("hostPath %s (%v): %v", tc.path, tc.typ, err)
			continue
		}
		if st, err := os.Stat(tc.path); err != nil || st.IsDir() != tc.wantDir {
			t.Errorf("hostPath %s (%v): after it, %v, %v; want a directory %v", tc.path, tc.typ, st, err, tc.wantDir)
		}
	}
}
