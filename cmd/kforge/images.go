package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"kforge.dev/kforge/images"
)

func init() { commands = append(commands, newImages) }

func newImages(_ *globalOptions) *cobra.Command {
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
	cmd.AddCommand(list)
	return cmd
}
