// How a joining node learns the cluster: token discovery, run once per
// run by whichever join phase needs the cluster first, and the cluster's
// settings read with the token.
package phases

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"kforge.dev/kforge/config"
	"kforge.dev/kforge/discovery"
	"kforge.dev/kforge/kube"
)

// joinCluster runs discovery once per run and adopts the cluster's
// settings: Kubernetes version, networks and CNI from the cluster file
// that kforge init uploaded, this host's bundle, and the API server that
// cluster-info names as the endpoint.
func (d *Data) joinCluster(ctx context.Context) error {
	if d.Discovery == nil {
		return errors.New("this phase belongs to kforge join")
	}
	if d.Results.Discovered != nil {
		return nil
	}
	start := time.Now()
	r, err := discovery.Discover(ctx, *d.Discovery)
	if err != nil {
		return err
	}
	d.Out.Logf("discovery: trusting %s (CA %s) after %s; the token is %s", r.Server, strings.Join(r.CAHashes, ", "), time.Since(start).Round(time.Millisecond), r.User)
	c, err := d.tokenClient(r)
	if err != nil {
		return err
	}
	cluster, err := uploadedCluster(ctx, c, r.Server)
	if err != nil {
		return err
	}
	if cluster.CNIPlugin() == "bridge" {
		return fmt.Errorf("the cluster at %s runs the single-node bridge network (cni.plugin bridge): pods on a second node would get the same addresses as the first node's and could not reach them. "+
			"A cluster with workers needs cni.plugin: kube-router in its cluster file (the default when it lists more than one host)", r.Server)
	}
	if err := d.checkNodeName(ctx, c); err != nil {
		return err
	}
	d.adoptCluster(cluster, r)
	// Now that the cluster's version and runtime are known: refuse a
	// bundle or a host runtime that cannot serve them, before the join
	// writes anything.
	var problems []problem
	add := func(name, format string, a ...any) {
		problems = append(problems, problem{name, fmt.Sprintf(format, a...)})
	}
	if err := d.hostFits(ctx, add, true); err != nil {
		return err
	}
	return d.preflightResult(preflightState{}, problems)
}

// tokenClient talks to the cluster's API server as the bootstrap token.
func (d *Data) tokenClient(r *discovery.Result) (kubernetes.Interface, error) {
	c, err := kubernetes.NewForConfig(discovery.RESTConfig(r.Server, r.CACert, d.Discovery.Token))
	if err != nil {
		return nil, fmt.Errorf("client for %s: %w", r.Server, err)
	}
	return c, nil
}

// uploadedCluster reads the cluster file kforge init stored in
// kube-system, which joining nodes may read.
// UploadedCluster is the cluster file init stored in the cluster.
func UploadedCluster(ctx context.Context, c kubernetes.Interface, server string) (*config.Cluster, error) {
	return uploadedCluster(ctx, c, server)
}

func uploadedCluster(ctx context.Context, c kubernetes.Interface, server string) (*config.Cluster, error) {
	name := metav1.NamespaceSystem + "/" + ClusterConfigMap
	cm, err := c.CoreV1().ConfigMaps(metav1.NamespaceSystem).Get(ctx, ClusterConfigMap, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err) || apierrors.IsForbidden(err):
		return nil, fmt.Errorf("the cluster at %s has no ConfigMap %s the token may read (%v): it was not built by kforge init, or init's upload-config phase has not run; kforge join takes the cluster's settings from it", server, name, err)
	case err != nil:
		return nil, fmt.Errorf("%s at %s: %w", name, server, err)
	}
	cluster, err := config.Parse(name, []byte(cm.Data[ClusterConfigKey]))
	if err != nil {
		return nil, fmt.Errorf("the cluster file in %s: %w", name, err)
	}
	return cluster, nil
}

// checkNodeName refuses a name that a Ready node of the cluster already
// has, unless this host is that node.
func (d *Data) checkNodeName(ctx context.Context, c kubernetes.Interface) error {
	if d.Results.Joined {
		return nil
	}
	n, err := c.CoreV1().Nodes().Get(ctx, d.NodeName, metav1.GetOptions{})
	if err != nil {
		if !apierrors.IsNotFound(err) {
			d.Out.Logf("cannot check whether node %s exists: %v", d.NodeName, err)
		}
		return nil
	}
	if ready, _ := kube.NodeReady(n); ready {
		return fmt.Errorf("a Node named %s is already in the cluster and Ready: another machine has this name. "+
			"Pass --node-name with a name of its own, or, if this machine replaces that node, delete it first (kubectl delete node %s)", d.NodeName, d.NodeName)
	}
	return nil
}

// withCluster runs a phase once discovery has learned the cluster's
// settings (Kubernetes version, networks), which `kforge join phase NAME`
// run alone has not.
func withCluster(run func(context.Context, *Data) error) func(context.Context, *Data) error {
	return func(ctx context.Context, d *Data) error {
		if err := d.joinCluster(ctx); err != nil {
			return err
		}
		if err := d.joinWrites(ctx); err != nil {
			return err
		}
		return run(ctx, d)
	}
}
