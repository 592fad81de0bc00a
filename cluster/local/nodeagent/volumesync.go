package nodeagent

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// While a pod runs, the agent rebuilds its configMap, secret, downwardAPI
// and projected volumes every volumeSyncPeriod and writes what changed,
// atomically (atomicdir.go), as the kubelet's sync does (the kubelet's
// period is a minute plus its cache's; the local cluster's is shorter):
// configMaps and secrets reread, downwardAPI fields from the pod as it is
// now (labels and annotations change), projected tokens requested again at
// 80% of their lifetime. An object that cannot be read, or a token refresh
// that fails, leaves the volume as it is; an optional object that is gone
// empties its files. A container that mounts a key through subPath keeps the
// file it started with, as with the kubelet.
const volumeSyncPeriod = 5 * time.Second

// syncedVolume is a volume kept in sync.
type syncedVolume struct {
	name string
	dir  string
	read func(context.Context) ([]volumeFile, error)
}

// syncedFiles returns how to read the files of a configMap, secret,
// downwardAPI or projected volume (nil for any other volume).
func (a *Agent) syncedFiles(pod *corev1.Pod, v *corev1.Volume) func(context.Context) ([]volumeFile, error) {
	switch {
	case v.DownwardAPI != nil:
		d := v.DownwardAPI
		return func(context.Context) ([]volumeFile, error) {
			return downwardFiles(a.currentPod(pod), d.Items, d.DefaultMode)
		}
	case v.Projected != nil:
		p, tokens := v.Projected, tokenCache{}
		return func(ctx context.Context) ([]volumeFile, error) {
			return a.projectedFiles(ctx, a.currentPod(pod), p, tokens)
		}
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

// currentPod is the pod as the agent's informer has it now (its labels and
// annotations may have changed since it started), or started if it has none
// of that pod.
func (a *Agent) currentPod(started *corev1.Pod) *corev1.Pod {
	if a.lister == nil {
		return started
	}
	now, ok, err := a.lister(podKey(started.Namespace, started.Name))
	if err != nil || !ok || now.UID != started.UID {
		return started
	}
	// Its status is what the informer saw last; the start's (its IP) is
	// what the pod's files were made from.
	merged := now.DeepCopy()
	merged.Status = started.Status
	return merged
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
