package daemon

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"github.com/forgetmenot/forgetmenot/configs"
	"github.com/forgetmenot/forgetmenot/router"
)

// settings are the files a reload reads: roster, routing rules and the
// targets (whose owner calendars and absences live in the roster).
type settings struct {
	roster *router.Roster
	rules  *router.Rules
	policy *router.Policy
	csat   *router.CSAT
}

// loadSettings reads and cross-checks the roster, routing and targets files;
// every error names the variable of the file at fault.
func loadSettings(cfg configs.Config) (settings, error) {
	roster, err := configs.LoadRoster(cfg.OwnersFile)
	if err != nil {
		return settings{}, fmt.Errorf("%s: %w", configs.Var("OWNERS_FILE"), err)
	}
	rules, err := configs.LoadRouting(cfg.RoutingFile, roster)
	if err != nil {
		return settings{}, fmt.Errorf("%s: %w", configs.Var("ROUTING_FILE"), err)
	}
	policy, csat, err := loadPolicy(cfg, roster)
	if err != nil {
		return settings{}, err
	}
	return settings{roster: roster, rules: rules, policy: policy, csat: csat}, nil
}

// Reload reads the roster, routing rules and targets again and puts them in
// force, all or nothing: on any error the ones in force stay, and the error
// says which file is wrong and why. The daemon reloads on SIGHUP.
func (d *Daemon) Reload(ctx context.Context) error {
	s, err := loadSettings(d.cfg)
	if err == nil {
		err = d.router.Reload(s.roster, s.rules, s.policy)
	}
	if err != nil {
		d.metrics.ReloadOK.Set(0)
		d.metrics.Reloads.WithLabelValues("failed").Inc()
		return err
	}
	d.metrics.ReloadOK.Set(1)
	d.metrics.Reloads.WithLabelValues("ok").Inc()
	d.log.Info("roster and routing rules reloaded", "owners", len(s.roster.Owners()), "teams", len(s.roster.TeamIDs()), "rules", len(s.rules.Rules))
	d.warnOrphans(ctx, s.roster)
	return nil
}

// warnOrphans names owners who left the roster but still own open
// complaints: nothing reassigns those by itself (a reopen does), so a
// person must.
func (d *Daemon) warnOrphans(ctx context.Context, roster *router.Roster) {
	var owners []string
	for _, o := range roster.Owners() {
		owners = append(owners, o.ID)
	}
	fig, err := d.store.OpenFigures(ctx, owners, time.Now())
	if err != nil {
		d.log.Warn("could not check for open complaints of owners who left the roster", "err", err)
		return
	}
	left := map[string][]string{}
	for owner, f := range fig.Owners {
		if _, ok := roster.Owner(owner); ok || f.Open == 0 {
			continue
		}
		ids, err := d.store.OwnerOpenIDs(ctx, owner)
		if err != nil {
			d.log.Warn("could not list the open complaints of an owner who left the roster", "owner", owner, "err", err)
			continue
		}
		left[owner] = ids
	}
	for owner, ids := range left {
		slices.Sort(ids)
		d.log.Warn("an owner who is no longer on the roster still owns open complaints; reassign them (forgetmenot complaints reassign ID --to OWNER --reason ...)",
			"owner", owner, "open", len(ids), "complaints", ids)
	}
}

// reloadOnHangup reloads on every SIGHUP until ctx ends. It listens from
// the moment it is called, so Run calls it before serving.
func (d *Daemon) reloadOnHangup(ctx context.Context) (wait func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				d.log.Info("SIGHUP: reloading the roster and routing rules")
				if err := d.Reload(ctx); err != nil {
					d.log.Error("reload refused; the previous roster and rules stay in force", "err", err)
				}
			}
		}
	}()
	return func() { <-done }
}
