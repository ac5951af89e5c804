# Machine-like containers for multi-node tests (included by the main
# Makefile; the scripts are in scripts/machines/, lib.sh lists the settings).
#
#   make machines N=3 [CONTROL_PLANES=1] [MACHINE_SYSTEMD="2 3"|all|none] [MACHINE_SSH_USER=root|kforge]
#   make machines-down
#
# Both accept MACHINES_PREFIX and MACHINES_SUBNET to run a second set beside
# the first (the machine tests use their own).
N ?= 3
CONTROL_PLANES ?= 1

.PHONY: machines machines-down machines-image

## machines: start N machine containers (default 3) with sshd, root and a sudo user on a private network with no route out; machine 2 boots systemd; prints a cluster file's path last
machines:
	@N='$(N)' CONTROL_PLANES='$(CONTROL_PLANES)' bash scripts/machines/up.sh

## machines-down: remove the machine containers, their network and state (the image stays cached)
machines-down:
	@bash scripts/machines/down.sh

## machines-image: build (or find cached) and import the machine image; prints its tag
machines-image:
	@bash scripts/machines/docker.sh
	@bash scripts/machines/image.sh
