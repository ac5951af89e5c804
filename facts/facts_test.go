package facts

import (
	"context"
	"testing"

	"kforge.dev/kforge/host/fake"
	"kforge.dev/kforge/providers/local"
)

func TestParseCgroupV1NoCapSysResource(t *testing.T) {
	f, err := Parse("hostname=Node-1\nuid=0\narch=x86_64\ncgroupfs=tmpfs\npid1=init\ncapeff=000001fffeffffff\ncpus=2\nmemkb=24684084\nswaps=0\nip_forward=0\nbridge_nf=1\nip=192.0.2.2/24\n")
	if err != nil {
		t.Fatal(err)
	}
	want := Facts{Hostname: "node-1", DefaultIP: "192.0.2.2", Arch: "x86_64", CPUs: 2, MemoryMiB: 24105, BridgeNF: true, BridgeNFAvailable: true}
	if f != want {
		t.Fatalf("got %+v\nwant %+v", f, want)
	}
	if f.CgroupDriver() != "cgroupfs" {
		t.Fatal("cgroupfs expected without systemd")
	}
}

func TestParseSystemdCgroupV2WithCaps(t *testing.T) {
	f, err := Parse("uid=0\ncgroupfs=cgroup2fs\npid1=systemd\nsystemd_dir=yes\ncapeff=000001ffffffffff\nswaps=1\n")
	if err != nil {
		t.Fatal(err)
	}
	if !f.CgroupV2 || !f.Systemd || !f.CapSysResource || !f.SwapOn || f.CgroupDriver() != "systemd" {
		t.Fatalf("got %+v", f)
	}
}

func TestParseRejectsGarbage(t *testing.T) {
	if _, err := Parse("sh: not found"); err == nil {
		t.Fatal("garbage accepted")
	}
}

func TestGatherRunsOneReadOnlyProbe(t *testing.T) {
	h := fake.New("n1")
	h.On(fake.Answer{Stdout: "uid=0\nhostname=n1\n"}, "sh", "-c")
	f, err := Gather(context.Background(), h)
	if err != nil || f.Hostname != "n1" {
		t.Fatalf("%+v %v", f, err)
	}
	if len(h.Calls()) != 1 {
		t.Fatalf("want one probe, got %v", h.Calls())
	}
}

// The probe really runs on this machine and yields usable facts.
func TestGatherLocal(t *testing.T) {
	f, err := Gather(context.Background(), local.New())
	if err != nil {
		t.Fatal(err)
	}
	if f.Hostname == "" || f.CPUs < 1 || f.MemoryMiB < 1 || f.Arch == "" {
		t.Fatalf("incomplete facts: %+v", f)
	}
}
