package nodeagent

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
)

// heartbeatPeriod is how often the agent reports its node's condition;
// notReadyPeriod how often while the node has no network configuration, so
// that it turns Ready soon after its CNI writes one.
const (
	heartbeatPeriod = 10 * time.Second
	notReadyPeriod  = time.Second
)

// heartbeat reports the node's condition now and then periodically until
// ctx ends.
func (a *Agent) heartbeat(ctx context.Context) error {
	ready, err := a.reportCondition(ctx)
	if err != nil {
		return err
	}
	go func() {
		for {
			period := heartbeatPeriod
			if !ready {
				period = notReadyPeriod
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(period):
				if ready, err = a.reportCondition(ctx); err != nil && ctx.Err() == nil {
					a.cfg.Log.Warn("node heartbeat", "err", err)
				}
			}
		}
	}()
	return nil
}

// nodeCondition is the node's Ready condition now: Ready once the node has
// a network configuration, else NotReady with the kubelet's reason.
func (a *Agent) nodeCondition(now metav1.Time) corev1.NodeCondition {
	if _, err := a.netConf(); err != nil {
		return corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionFalse, Reason: "NetworkPluginNotReady",
			Message: "container runtime network not ready: " + err.Error(), LastHeartbeatTime: now, LastTransitionTime: now}
	}
	return corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "NodeAgentReady",
		Message: "the netpolcheck node agent is running", LastHeartbeatTime: now, LastTransitionTime: now}
}

// reportCondition writes the node's Ready condition and says whether it is
// Ready.
func (a *Agent) reportCondition(ctx context.Context) (bool, error) {
	var ready corev1.NodeCondition
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		node, err := a.client.CoreV1().Nodes().Get(ctx, a.cfg.NodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		ready = a.nodeCondition(metav1.Now())
		found := false
		for i, c := range node.Status.Conditions {
			if c.Type != corev1.NodeReady {
				continue
			}
			found = true
			if c.Status == ready.Status {
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
		return false, fmt.Errorf("reporting the condition of node %s: %w", a.cfg.NodeName, err)
	}
	return ready.Status == corev1.ConditionTrue, nil
}
