package nodeagent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Volumes: the agent writes every volume of a pod into a directory of its
// own (PodsDir/POD/volumes/NAME), which the containers that mount it get
// bind-mounted at their mountPath: configMap and secret keys (all, or the
// listed items) and downwardAPI fields as files, an emptyDir empty, a
// projected volume as the union of its sources, its service-account token
// requested through the TokenRequest API (bound to the pod) and rewritten
// before it expires. A hostPath volume is the machine's path itself.
// ConfigMap, secret, downwardAPI and projected volumes are written as the
// kubelet writes them (atomicdir.go) and kept in sync while the pod runs
// (volumesync.go): their objects reread, the pod's fields as they are now,
// tokens requested again when due.

// defaultTokenSeconds is a projected token's lifetime when the volume sets
// none, as the API's default.
const defaultTokenSeconds = 3600

// podVolumes is what prepareVolumes made: the host directory (or file) of
// every volume by name, and the volumes to keep in sync.
type podVolumes struct {
	paths  map[string]string
	synced []syncedVolume
}

// prepareVolumes writes the volumes of pod under dir.
func (a *Agent) prepareVolumes(ctx context.Context, pod *corev1.Pod, dir string) (podVolumes, error) {
	vols := podVolumes{paths: map[string]string{}}
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i]
		volDir := filepath.Join(dir, v.Name)
		if read := a.syncedFiles(pod, v); read != nil {
			sv := syncedVolume{name: v.Name, dir: volDir, read: read}
			if _, err := sv.sync(ctx); err != nil {
				return podVolumes{}, fmt.Errorf("volume %s: %w", v.Name, err)
			}
			vols.paths[v.Name] = volDir
			vols.synced = append(vols.synced, sv)
			continue
		}
		p, err := prepareVolume(v, volDir)
		if err != nil {
			return podVolumes{}, fmt.Errorf("volume %s: %w", v.Name, err)
		}
		vols.paths[v.Name] = p
	}
	return vols, nil
}

// prepareVolume makes a volume that is not kept in sync: an emptyDir, or a
// hostPath's checks.
func prepareVolume(v *corev1.Volume, dir string) (string, error) {
	switch {
	case v.HostPath != nil:
		return v.HostPath.Path, hostPath(v.HostPath)
	case v.EmptyDir != nil:
		return dir, os.MkdirAll(dir, 0o755)
	}
	return "", fmt.Errorf("the local cluster supports emptyDir, hostPath, configMap, secret, downwardAPI and projected volumes only")
}

// hostPath checks a hostPath volume's type, creating the path for the
// OrCreate types as the kubelet does, and a missing path of no type as a
// directory, as containerd's CRI does before it bind-mounts it.
func hostPath(h *corev1.HostPathVolumeSource) error {
	typ := corev1.HostPathUnset
	if h.Type != nil {
		typ = *h.Type
	}
	switch typ {
	case corev1.HostPathDirectoryOrCreate:
		return os.MkdirAll(h.Path, 0o755)
	case corev1.HostPathUnset:
		if _, err := os.Stat(h.Path); errors.Is(err, fs.ErrNotExist) {
			if err := os.MkdirAll(h.Path, 0o755); err != nil {
				return fmt.Errorf("hostPath: %w", err)
			}
		}
	case corev1.HostPathFileOrCreate:
		f, err := os.OpenFile(h.Path, os.O_CREATE|os.O_RDONLY, 0o644)
		if err != nil {
			return err
		}
		return f.Close()
	}
	st, err := os.Stat(h.Path)
	if err != nil {
		return fmt.Errorf("hostPath: %w", err)
	}
	if (typ == corev1.HostPathDirectory && !st.IsDir()) || (typ == corev1.HostPathFile && !st.Mode().IsRegular()) {
		return fmt.Errorf("hostPath %s is not a %s", h.Path, strings.ToLower(string(typ)))
	}
	return nil
}

// volumeFile is one file of a volume.
type volumeFile struct {
	path string
	data []byte
	mode os.FileMode
}

// writeVolumeFiles writes files under dir, each atomically (a reader never
// sees half a file, which matters for rewritten tokens).
func writeVolumeFiles(dir string, files []volumeFile) error {
	for _, f := range files {
		target := filepath.Join(dir, f.path)
		if !strings.HasPrefix(target, dir+string(filepath.Separator)) {
			return fmt.Errorf("item path %q leaves the volume", f.path)
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		tmp := filepath.Join(filepath.Dir(target), ".."+filepath.Base(target)+".tmp")
		if err := os.WriteFile(tmp, f.data, f.mode); err != nil {
			return err
		}
		if err := os.Chmod(tmp, f.mode); err != nil {
			return err
		}
		if err := os.Rename(tmp, target); err != nil {
			return err
		}
	}
	return nil
}

func configMapFiles(ctx context.Context, client kubernetes.Interface, namespace, name string, items []corev1.KeyToPath, defaultMode *int32, optional *bool) ([]volumeFile, error) {
	cm, err := client.CoreV1().ConfigMaps(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return absent(err, optional, "configMap "+name)
	}
	data := map[string][]byte{}
	for k, s := range cm.Data {
		data[k] = []byte(s)
	}
	for k, b := range cm.BinaryData {
		data[k] = b
	}
	return keyFiles(data, items, defaultMode, optional)
}

func secretFiles(ctx context.Context, client kubernetes.Interface, namespace, name string, items []corev1.KeyToPath, defaultMode *int32, optional *bool) ([]volumeFile, error) {
	secret, err := client.CoreV1().Secrets(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return absent(err, optional, "secret "+name)
	}
	return keyFiles(secret.Data, items, defaultMode, optional)
}

// absent is the result of a volume source that could not be read: no files
// when it is optional and not found, an error otherwise.
func absent(err error, optional *bool, what string) ([]volumeFile, error) {
	if apierrors.IsNotFound(err) && optional != nil && *optional {
		return nil, nil
	}
	return nil, fmt.Errorf("reading %s: %w", what, err)
}

func fileMode(defaultMode, mode *int32) os.FileMode {
	switch {
	case mode != nil:
		return os.FileMode(*mode)
	case defaultMode != nil:
		return os.FileMode(*defaultMode)
	}
	return 0o644
}

// keyFiles are the files of a configMap's or secret's keys: every key, or
// the listed items (a missing key is an error unless optional).
func keyFiles(data map[string][]byte, items []corev1.KeyToPath, defaultMode *int32, optional *bool) ([]volumeFile, error) {
	var files []volumeFile
	if len(items) == 0 {
		for k, b := range data {
			files = append(files, volumeFile{path: k, data: b, mode: fileMode(defaultMode, nil)})
		}
		return files, nil
	}
	for _, item := range items {
		b, ok := data[item.Key]
		if !ok {
			if optional != nil && *optional {
				continue
			}
			return nil, fmt.Errorf("no key %q", item.Key)
		}
		files = append(files, volumeFile{path: item.Path, data: b, mode: fileMode(defaultMode, item.Mode)})
	}
	return files, nil
}

func downwardFiles(pod *corev1.Pod, items []corev1.DownwardAPIVolumeFile, defaultMode *int32) ([]volumeFile, error) {
	var files []volumeFile
	for _, item := range items {
		if item.FieldRef == nil {
			return nil, fmt.Errorf("downwardAPI %s: only fieldRef is supported by the local cluster", item.Path)
		}
		v, err := fieldValue(pod, item.FieldRef.FieldPath)
		if err != nil {
			return nil, fmt.Errorf("downwardAPI %s: %w", item.Path, err)
		}
		files = append(files, volumeFile{path: item.Path, data: []byte(v), mode: fileMode(defaultMode, item.Mode)})
	}
	return files, nil
}

// projectedFiles are the files of a projected volume's sources, its tokens
// from tokens (requested when due).
func (a *Agent) projectedFiles(ctx context.Context, pod *corev1.Pod, p *corev1.ProjectedVolumeSource, tokens tokenCache) ([]volumeFile, error) {
	var files []volumeFile
	for _, s := range p.Sources {
		var (
			more []volumeFile
			err  error
		)
		switch {
		case s.ConfigMap != nil:
			more, err = configMapFiles(ctx, a.client, pod.Namespace, s.ConfigMap.Name, s.ConfigMap.Items, p.DefaultMode, s.ConfigMap.Optional)
		case s.Secret != nil:
			more, err = secretFiles(ctx, a.client, pod.Namespace, s.Secret.Name, s.Secret.Items, p.DefaultMode, s.Secret.Optional)
		case s.DownwardAPI != nil:
			more, err = downwardFiles(pod, s.DownwardAPI.Items, p.DefaultMode)
		case s.ServiceAccountToken != nil:
			var token []byte
			token, err = tokens.get(ctx, a.client, pod, s.ServiceAccountToken)
			more = []volumeFile{{path: s.ServiceAccountToken.Path, data: token, mode: fileMode(p.DefaultMode, nil)}}
		default:
			err = fmt.Errorf("the local cluster supports configMap, secret, downwardAPI and serviceAccountToken projections only")
		}
		if err != nil {
			return nil, err
		}
		files = append(files, more...)
	}
	return files, nil
}

// tokenCache holds a projected volume's tokens between syncs, by path, each
// with when the kubelet would request it again.
type tokenCache map[string]*cachedToken

type cachedToken struct {
	token     []byte
	refreshAt time.Time
}

// get returns the token of source, requested now if it has none or its
// refresh is due. A refresh that fails is an error (the volume keeps its
// files, and the next sync tries again).
func (c tokenCache) get(ctx context.Context, client kubernetes.Interface, pod *corev1.Pod, source *corev1.ServiceAccountTokenProjection) ([]byte, error) {
	if t := c[source.Path]; t != nil && time.Now().Before(t.refreshAt) {
		return t.token, nil
	}
	token, expiry, err := requestToken(ctx, client, pod, source)
	if err != nil {
		return nil, err
	}
	c[source.Path] = &cachedToken{token: token, refreshAt: time.Now().Add(refreshAfter(time.Until(expiry)))}
	return token, nil
}

// requestToken asks the API for a token of the pod's service account, bound
// to the pod, and returns it with its expiry.
func requestToken(ctx context.Context, client kubernetes.Interface, pod *corev1.Pod, s *corev1.ServiceAccountTokenProjection) ([]byte, time.Time, error) {
	seconds := int64(defaultTokenSeconds)
	if s.ExpirationSeconds != nil {
		seconds = *s.ExpirationSeconds
	}
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		ExpirationSeconds: &seconds,
		BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
	}}
	if s.Audience != "" {
		req.Spec.Audiences = []string{s.Audience}
	}
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	resp, err := client.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, sa, req, metav1.CreateOptions{})
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("requesting a token of service account %s: %w", sa, err)
	}
	return []byte(resp.Status.Token), resp.Status.ExpirationTimestamp.Time, nil
}

// refreshAfter is when the kubelet renews a token: at 80% of its lifetime,
// and at least daily.
func refreshAfter(lifetime time.Duration) time.Duration {
	return min(lifetime*8/10, 24*time.Hour)
}
