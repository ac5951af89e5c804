package main

import (
	"context"

	"github.com/spf13/cobra"

	"kforge.dev/kforge/cluster"
)

func init() { commands = append(commands, newEtcd) }

func newEtcd(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "etcd",
		Short: "The cluster's etcd: its members, snapshots and restores",
	}
	snapshot := &cobra.Command{
		Use:   "snapshot",
		Short: "Save etcd's state to a file, or bring the cluster back to one",
	}
	snapshot.AddCommand(
		etcdSnapshotCommand(g, "save FILE", "Take a consistent snapshot with the cluster's own etcdctl, check it with etcdutl, and copy it here (0600)", cluster.EtcdSnapshotSave),
		etcdSnapshotCommand(g, "restore FILE", "Bring the cluster back to a snapshot: stop the control plane, restore with the cluster's own etcdutl into a new data directory (the old one is kept), start it again and wait for every node Ready", cluster.EtcdSnapshotRestore),
	)
	cmd.AddCommand(snapshot, newEtcdMembers())
	return cmd
}

func etcdSnapshotCommand(g *globalOptions, use, short string, run func(context.Context, cluster.EtcdSnapshotOptions) error) *cobra.Command {
	o := cluster.EtcdSnapshotOptions{}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.File = args[0]
			o.Out = g.reporter(cmd)
			return finish(o.Out, run(cmd.Context(), o))
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.ConfigFile, "config", "f", "", "work on this cluster file's control plane, over SSH (default: this machine)")
	f.BoolVar(&o.Connect.AcceptNewHostKeys, "accept-new-host-keys", false, "trust and record SSH host keys seen for the first time")
	addOutputFlag(cmd, g)
	return cmd
}

func newEtcdMembers() *cobra.Command {
	o := cluster.EtcdMembersOptions{}
	var output outputFormat
	cmd := &cobra.Command{
		Use:   "members",
		Short: "List etcd's members with their role (leader, follower, learner), health, size and raft position",
		Long: "List the members of the cluster's etcd, asking the etcdctl of the cluster's own etcd image in the running etcd pod:\n" +
			"each member's ID, name, URLs, role, health, database size, raft term and index, and version.\n" +
			"Exits non-zero, naming them, when a member is not healthy.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.JSON = output == "json"
			o.Out = cmd.OutOrStdout()
			return cluster.EtcdMembers(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.ConfigFile, "config", "f", "", "ask this cluster file's control plane, over SSH (default: this machine)")
	f.VarP(&output, "output", "o", "text: a table; json: one JSON document")
	f.BoolVar(&o.Connect.AcceptNewHostKeys, "accept-new-host-keys", false, "trust and record SSH host keys seen for the first time")
	cmd.AddCommand(newEtcdMembersRemove())
	return cmd
}

func newEtcdMembersRemove() *cobra.Command {
	o := cluster.EtcdRemoveOptions{}
	cmd := &cobra.Command{
		Use:   "remove NAME",
		Short: "Take a control plane that died out of the cluster: its etcd member and its Node",
		Long: "From a running control plane, remove the etcd member NAME (a control plane's node name) and delete its Node,\n" +
			"for a control plane whose machine is gone and so cannot run kforge reset itself. Refused when the members left\n" +
			"would not make a quorum, unless --force. A replacement can then join under the same name or a new one (kforge init -f).",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Name = args[0]
			o.Out = cmd.OutOrStdout()
			return cluster.EtcdRemoveMember(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.ConfigFile, "config", "f", "", "work through a running control plane of this cluster file, over SSH (default: this machine)")
	f.BoolVar(&o.Force, "force", false, "remove the member even when the members left would not make a quorum")
	f.BoolVar(&o.Connect.AcceptNewHostKeys, "accept-new-host-keys", false, "trust and record SSH host keys seen for the first time")
	return cmd
}
