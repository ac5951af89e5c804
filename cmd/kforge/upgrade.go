package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"kforge.dev/kforge/cluster"
)

func init() { commands = append(commands, newUpgrade) }

func newUpgrade(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "upgrade",
		Short: "Move a cluster to another Kubernetes version, node by node, with an etcd snapshot first and automatic rollback",
	}
	cmd.AddCommand(
		upgradeCommand(g, "plan", "Show each node's versions, the bundle's, and the steps of an apply; refuse, saying why, what apply would refuse",
			"Read every node's kubelet and control-plane versions, the add-ons' and etcd's health, and the control planes' certificates, and print them\n"+
				"with the bundle's versions and the order of the steps. Exits non-zero, changing nothing, for a skipped minor, a downgrade, a bundle\n"+
				"of another version than --kubernetes-version, a node NotReady, etcd without a quorum, or a certificate expiring within 2 hours.",
			true, cluster.UpgradePlan),
		upgradeCommand(g, "apply", "Upgrade the cluster to the bundle's version: an etcd snapshot, the control planes one at a time, the workers drained, then the add-ons",
			"Take an etcd snapshot and copy it to --snapshot-dir on this machine. Then, one control plane at a time: back up its manifests, binaries\n"+
				"and kubelet configuration, renew its certificates, install the bundle's binaries and images, re-render its static pods for the new\n"+
				"version, restart the kubelet on its new binary, and wait until etcd, the API server, the controller manager, the scheduler and the\n"+
				"node are healthy at the new version. Then the workers, --parallel at a time: cordon and drain (PodDisruptionBudgets respected),\n"+
				"new binaries and kubelet, Ready, uncordon. Then kube-proxy, CoreDNS and the network. A node that is not healthy within --timeout\n"+
				"is rolled back to what it ran and the apply stops with the component and its log (a worker stays cordoned). Run it again after\n"+
				"an interruption: nodes at the target are skipped and a half-upgraded one is finished.",
			true, cluster.UpgradeApply),
		upgradeCommand(g, "rollback", "Take the cluster (or --node) back to the version it ran before the last apply",
			"From each node's backup of the last apply: workers first, then the control planes, last first, each healthy before the next, then\n"+
				"the add-ons. etcd keeps its data, and its newer version where it ran it; --etcd-snapshot FILE restores its data from the snapshot\n"+
				"apply took, which loses every write since.",
			false, cluster.UpgradeRollback),
	)
	return cmd
}

func upgradeCommand(g *globalOptions, use, short, long string, withBundle bool, run func(context.Context, cluster.UpgradeOptions) error) *cobra.Command {
	o := cluster.UpgradeOptions{}
	var output outputFormat
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Long:  long,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.ConfigFile == "" {
				return fmt.Errorf("-f: name the cluster file (kforge up --local --kubernetes-version upgrades a local cluster)")
			}
			if err := atLeastOne("parallel", o.Parallel); err != nil {
				return err
			}
			if o.Timeout <= 0 {
				return fmt.Errorf("--timeout %s: must be positive", o.Timeout)
			}
			o.JSON = output == "json"
			o.Out = g.reporter(cmd)
			return finish(o.Out, run(cmd.Context(), o))
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.ConfigFile, "config", "f", "", "the cluster file")
	f.DurationVar(&o.Timeout, "timeout", cluster.DefaultUpgradeTimeout, "how long each node may take to be healthy at its new (or old) version")
	f.BoolVar(&o.Connect.AcceptNewHostKeys, "accept-new-host-keys", false, "trust and record SSH host keys seen for the first time")
	addTrustFlags(f, &o.Trust)
	switch use {
	case "plan":
		f.VarP(&output, "output", "o", "text: tables and steps; json: one JSON document")
	default:
		addOutputFlag(cmd, g)
	}
	if withBundle {
		f.StringVar(&o.Bundle, "bundle", "", "the bundle of the version to upgrade to (make artifacts KUBERNETES_VERSIONS=vX.Y.Z builds one)")
		f.StringVar(&o.KubernetesVersion, "kubernetes-version", "", "refuse unless the bundle holds this version")
	}
	o.Parallel = 1
	if use == "apply" {
		f.IntVar(&o.Parallel, "parallel", 1, "how many workers are drained and upgraded at once")
		f.StringVar(&o.SnapshotDir, "snapshot-dir", ".", "where the etcd snapshot taken first is kept, on this machine")
	}
	if use == "rollback" {
		f.StringVar(&o.Node, "node", "", "roll back only this node")
		f.StringVar(&o.EtcdSnapshot, "etcd-snapshot", "", "also restore etcd's data from this snapshot (loses every write since it was taken)")
	}
	return cmd
}
