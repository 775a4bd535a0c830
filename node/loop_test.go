package node

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vaxel/vaxel/node/config"
)

// A loop between platforms (A routes to N, N routes back to A) ends at the
// second visit with VP014, under concurrent load: every call is answered
// with the fault, and each crosses exactly the two hops A→N→A, so a loop
// never turns into a forwarding storm.
func TestFederationLoopAnswersVP014(t *testing.T) {
	p := newGossipPlatform(t)
	fedKey := writeFedKey(t, p, 9)
	issueConsumer(t, p)
	single := func(name, platform string, allow []string, join ...string) *config.Config {
		return fedSingle(t, p, name, platform, fedKey, allow, join...)
	}
	n := p.start(single("n1", "N", []string{"A"}))
	a := p.start(single("a1", "A", []string{"N"}, n.fed.Addr()))
	applyOrder(t, a.Node, "A", fedOrder("A", "SE-N", "vaxel://N", "SE-CONSUMER", []string{fedLA}, []string{fedLA}))
	applyOrder(t, n.Node, "N", fedOrder("N", "SE-A", "vaxel://A", a.hsaID, []string{fedLA}, []string{fedLA}))
	for _, x := range []*runningNode{a, n} {
		waitFor(t, x.cfg.Node.Name+" ready", 20*time.Second, func() bool { ok, _ := x.Readiness(); return ok })
	}
	waitFor(t, "A sees N and N sees A", 20*time.Second, func() bool {
		_, ok1 := a.router.Platforms().Nodes("N")
		_, ok2 := n.router.Platforms().Nodes("A")
		return ok1 && ok2
	})
	aAddr, _ := a.RouterAddrs()
	aBefore, nBefore := a.router.Stats().Calls.Load(), n.router.Stats().Calls.Load()

	const workers, per = 8, 25
	var wg sync.WaitGroup
	errs := make(chan string, workers*per)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i++ {
				code, body := fedCall(t, p.dir, aAddr, fedLA)
				if code != 500 || !strings.Contains(body, "VP014 [A]") {
					errs <- body
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatalf("a looping call was not answered with A's VP014: %s", e)
	}
	calls := uint64(workers * per)
	// A sees each call twice (from the consumer, then back from N), N once.
	if got := a.router.Stats().Calls.Load() - aBefore; got != 2*calls {
		t.Errorf("A handled %d calls for %d consumer calls; want exactly %d (no storm)", got, calls, 2*calls)
	}
	if got := n.router.Stats().Calls.Load() - nBefore; got != calls {
		t.Errorf("N handled %d calls for %d consumer calls; want exactly %d", got, calls, calls)
	}
}
