// Package deploy holds what an operator deploys forgetmenot with: Prometheus
// alerting rules (prometheus/), a Grafana dashboard (grafana/), Kubernetes
// manifests (kubernetes/) and a hardened systemd unit (systemd/). It has no
// code; its tests check the files against a running daemon and the tools
// that read them (promtool, systemd-analyze).
package deploy
