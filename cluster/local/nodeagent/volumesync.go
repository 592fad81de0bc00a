package nodeagent

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// While a pod runs, the agent rereads the configMaps and secrets of its
// configMap and secret volumes every volumeSyncPeriod and writes what
// changed, atomically (atomicdir.go), as the kubelet's sync does (the
// kubelet's period is a minute plus its cache's; the local cluster's is
// shorter). An object that cannot be read leaves the volume as it is; an
// optional one that is gone empties it. A container that mounts a key
// through subPath keeps the file it started with, as with the kubelet.
const volumeSyncPeriod = 5 * time.Second

// syncedVolume is a configMap or secret volume kept in sync.
type syncedVolume struct {
	name string
	dir  string
	read func(context.Context) ([]volumeFile, error)
}

// syncedFiles returns how to read the files of a configMap or secret
// volume (nil for any other volume).
func (a *Agent) syncedFiles(pod *corev1.Pod, v *corev1.Volume) func(context.Context) ([]volumeFile, error) {
	switch {
	case v.ConfigMap != nil:
		cm := v.ConfigMap
		return func(ctx context.Context) ([]volumeFile, error) {
			return configMapFiles(ctx, a.client, pod.Namespace, cm.Name, cm.Items, cm.DefaultMode, cm.Optional)
		}
	case v.Secret != nil:
		s := v.Secret
		return func(ctx context.Context) ([]volumeFile, error) {
			return secretFiles(ctx, a.client, pod.Namespace, s.SecretName, s.Items, s.DefaultMode, s.Optional)
		}
	}
	return nil
}

// sync reads the volume's object and writes its files when they changed
// (and says whether they had).
func (sv syncedVolume) sync(ctx context.Context) (bool, error) {
	files, err := sv.read(ctx)
	if err != nil {
		return false, err
	}
	changed, err := writeAtomicDir(sv.dir, files)
	if err != nil {
		return false, fmt.Errorf("writing volume %s: %w", sv.name, err)
	}
	return changed, nil
}

// keepVolumesSynced syncs the volumes every period until ctx ends.
func keepVolumesSynced(ctx context.Context, volumes []syncedVolume, period time.Duration, log *slog.Logger) {
	if len(volumes) == 0 {
		return
	}
	go func() {
		ticker := time.NewTicker(period)
		defer ticker.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
			}
			for _, sv := range volumes {
				changed, err := sv.sync(ctx)
				switch {
				case err != nil && ctx.Err() == nil:
					log.Warn("syncing a volume, keeping its files", "volume", sv.name, "err", err)
				case changed:
					log.Info("volume updated", "volume", sv.name)
				}
			}
		}
	}()
}
