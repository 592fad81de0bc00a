package nodeagent

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
)

// heartbeatPeriod is how often the agent reports its node Ready.
const heartbeatPeriod = 10 * time.Second

// heartbeat reports the node Ready now and every heartbeatPeriod until ctx ends.
func (a *Agent) heartbeat(ctx context.Context) error {
	if err := a.reportReady(ctx); err != nil {
		return err
	}
	go func() {
		t := time.NewTicker(heartbeatPeriod)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := a.reportReady(ctx); err != nil && ctx.Err() == nil {
					a.cfg.Log.Warn("node heartbeat", "err", err)
				}
			}
		}
	}()
	return nil
}

func (a *Agent) reportReady(ctx context.Context) error {
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		node, err := a.client.CoreV1().Nodes().Get(ctx, a.cfg.NodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		now := metav1.Now()
		ready := corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "NodeAgentReady",
			Message: "the netpolcheck node agent is running", LastHeartbeatTime: now, LastTransitionTime: now}
		found := false
		for i, c := range node.Status.Conditions {
			if c.Type != corev1.NodeReady {
				continue
			}
			found = true
			if c.Status == corev1.ConditionTrue {
				ready.LastTransitionTime = c.LastTransitionTime
			}
			node.Status.Conditions[i] = ready
		}
		if !found {
			node.Status.Conditions = append(node.Status.Conditions, ready)
		}
		_, err = a.client.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("reporting node %s ready: %w", a.cfg.NodeName, err)
	}
	return nil
}
