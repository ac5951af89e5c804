package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"kforge.dev/kforge/cluster"
	"kforge.dev/kforge/images"
)

func init() { commands = append(commands, newImages) }

func newImages(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "images",
		Short: "The container images of a cluster",
	}
	var version string
	list := &cobra.Command{
		Use:   "list",
		Short: "Print the upstream name of every image a cluster runs, one a line",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			set, err := images.For(version)
			if err != nil {
				return err
			}
			for _, img := range set.All() {
				fmt.Fprintln(cmd.OutOrStdout(), img)
			}
			return nil
		},
	}
	list.Flags().StringVar(&version, "kubernetes-version", images.Default(), "Kubernetes version")
	cmd.AddCommand(list, newImagesLoad(g))
	return cmd
}

func newImagesLoad(g *globalOptions) *cobra.Command {
	o := cluster.ImagesLoadOptions{}
	var localFlag bool
	cmd := &cobra.Command{
		Use:   "load FILE [-f cluster.yaml | --local]",
		Short: "Import an image archive (docker save or OCI) into containerd on every node",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if localFlag == (o.ConfigFile != "") {
				return fmt.Errorf("images load needs exactly one of --local (this machine) or -f cluster.yaml (every host)")
			}
			if err := atLeastOne("parallel", o.Parallel); err != nil {
				return err
			}
			o.Archive = args[0]
			o.Out = g.reporter(cmd)
			return cluster.ImagesLoad(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.ConfigFile, "config", "f", "", "load into every host of this cluster file")
	f.BoolVar(&localFlag, "local", false, "load into this machine's containerd")
	f.IntVar(&o.Parallel, "parallel", 5, "how many hosts at once")
	f.BoolVar(&o.Connect.AcceptNewHostKeys, "accept-new-host-keys", false, "trust and record SSH host keys seen for the first time")
	return cmd
}
