package phases

import (
	"context"
	"errors"
	"io/fs"
	"regexp"

	"kforge.dev/kforge/host"
	"kforge.dev/kforge/layout"
)

// vipAddressRe finds keepalived's virtual address line in kforge's
// configuration: "172.30.0.100/32 dev eth0".
var vipAddressRe = regexp.MustCompile(`(?m)^\s*([0-9.]+/[0-9]+) dev (\S+)\s*$`)

// resetVIP takes the cluster's virtual IP off the host's interface when
// this host held it: keepalived, stopped with the other containers, has
// no chance to. The address is read from keepalived's configuration,
// which the files phase removes after.
func resetVIP(ctx context.Context, d *Data) error {
	b, err := d.Host.ReadFile(ctx, layout.VIPConfig)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	for _, m := range vipAddressRe.FindAllSubmatch(b, -1) {
		addr, dev := string(m[1]), string(m[2])
		if _, err := d.Host.Run(ctx, host.Cmd{Sudo: true, Argv: []string{"sh", "-c", `ip -4 addr show dev "$2" | grep -q " inet $1 " || exit 0; ip addr del "$1" dev "$2"`, "sh", addr, dev}}); err != nil {
			return err
		}
	}
	return nil
}
