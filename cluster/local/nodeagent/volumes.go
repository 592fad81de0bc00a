package nodeagent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// materialize writes the volumes of a container under the pod's root: the
// keys of a configMap or secret (all of them, or the listed items) as files,
// an emptyDir as an empty directory. They are read once, when the pod
// starts; later changes to the objects are not propagated.
func (a *Agent) materialize(ctx context.Context, pod *corev1.Pod, root string, mounts []mount) error {
	for _, m := range mounts {
		dir := filepath.Join(root, m.mountPath)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("volume %s: %w", m.volume.Name, err)
		}
		files, err := a.volumeFiles(ctx, pod.Namespace, m.volume)
		if err != nil {
			return fmt.Errorf("volume %s: %w", m.volume.Name, err)
		}
		for _, f := range files {
			target := filepath.Join(dir, f.path)
			if !strings.HasPrefix(target, dir+string(filepath.Separator)) {
				return fmt.Errorf("volume %s: item path %q leaves the volume", m.volume.Name, f.path)
			}
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return fmt.Errorf("volume %s: %w", m.volume.Name, err)
			}
			if err := os.WriteFile(target, f.data, f.mode); err != nil {
				return fmt.Errorf("volume %s: %w", m.volume.Name, err)
			}
		}
	}
	return nil
}

// volumeFile is one file of a volume.
type volumeFile struct {
	path string
	data []byte
	mode os.FileMode
}

// volumeFiles reads the files of a configMap or secret volume (none for an
// emptyDir).
func (a *Agent) volumeFiles(ctx context.Context, namespace string, v *corev1.Volume) ([]volumeFile, error) {
	var (
		data        map[string][]byte
		items       []corev1.KeyToPath
		defaultMode *int32
		optional    *bool
		err         error
	)
	switch {
	case v.ConfigMap != nil:
		items, defaultMode, optional = v.ConfigMap.Items, v.ConfigMap.DefaultMode, v.ConfigMap.Optional
		var cm *corev1.ConfigMap
		if cm, err = a.client.CoreV1().ConfigMaps(namespace).Get(ctx, v.ConfigMap.Name, metav1.GetOptions{}); err == nil {
			data = map[string][]byte{}
			for k, s := range cm.Data {
				data[k] = []byte(s)
			}
			for k, b := range cm.BinaryData {
				data[k] = b
			}
		}
	case v.Secret != nil:
		items, defaultMode, optional = v.Secret.Items, v.Secret.DefaultMode, v.Secret.Optional
		var secret *corev1.Secret
		if secret, err = a.client.CoreV1().Secrets(namespace).Get(ctx, v.Secret.SecretName, metav1.GetOptions{}); err == nil {
			data = secret.Data
		}
	default:
		return nil, nil
	}
	if apierrors.IsNotFound(err) && optional != nil && *optional {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	mode := os.FileMode(0o644)
	if defaultMode != nil {
		mode = os.FileMode(*defaultMode)
	}
	var files []volumeFile
	if len(items) == 0 {
		for k, b := range data {
			files = append(files, volumeFile{path: k, data: b, mode: mode})
		}
		return files, nil
	}
	for _, item := range items {
		b, ok := data[item.Key]
		if !ok {
			return nil, fmt.Errorf("no key %q", item.Key)
		}
		m := mode
		if item.Mode != nil {
			m = os.FileMode(*item.Mode)
		}
		files = append(files, volumeFile{path: item.Path, data: b, mode: m})
	}
	return files, nil
}
