package test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vaxel/vaxel/test/harness"
)

// Producer behaviours by path of the plain-HTTP producer. Each route of the
// fixture points at one of them.
const (
	pathOK           = "/vardgivare-b/tjanst2"
	pathRiv21        = "/riv21"
	pathSoapFault500 = "/soapfault500"
	pathNotFound     = "/notfound"
	pathError500     = "/error500"
	pathEmpty        = "/empty"
	pathNonSOAP      = "/nonsoap"
	pathSoapFault200 = "/soapfault200"
	pathSlow         = "/slow"
	pathHeaders      = "/headers"

	// delayHeader tells the slow producer how long to wait (a Go duration).
	delayHeader = "X-Test-Delay"
	nonSOAPBody = "this is not SOAP, and VP passes it through"
)

// okHandler answers with a GetCertificateResponse (UTF-8, with å, ä, ö).
func okHandler(w http.ResponseWriter, r *http.Request, body []byte) {
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	_, _ = w.Write(mustRead("getcertificate-response.xml"))
}

func mustRead(name string) []byte {
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		panic(err)
	}
	return b
}

func setupProducerBehaviours(p *harness.Producer) {
	fault := mustRead("producer-soapfault.xml")
	p.Handle(pathSoapFault500, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
		w.WriteHeader(500)
		_, _ = w.Write(fault)
	})
	p.Handle(pathSoapFault200, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
		_, _ = w.Write(fault)
	})
	p.Handle(pathNotFound, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		http.Error(w, "no such service", 404)
	})
	p.Handle(pathError500, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(500)
		_, _ = w.Write([]byte("java.lang.NullPointerException at some.producer.Impl"))
	})
	p.Handle(pathEmpty, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
		w.WriteHeader(200)
	})
	p.Handle(pathNonSOAP, func(w http.ResponseWriter, r *http.Request, _ []byte) {
		w.Header().Set("Content-Type", "text/plain;charset=UTF-8")
		_, _ = w.Write([]byte(nonSOAPBody))
	})
	p.Handle(pathSlow, func(w http.ResponseWriter, r *http.Request, body []byte) {
		if d, err := time.ParseDuration(r.Header.Get(delayHeader)); err == nil {
			harness.Sleep(r, d)
		}
		okHandler(w, r, body)
	})
	p.Handle(pathHeaders, func(w http.ResponseWriter, r *http.Request, body []byte) {
		// Header names written as a Mule-era producer writes them.
		h := w.Header()
		h["SOAPAction"] = []string{"urn:producer:action"}
		h["MULE_X"] = []string{"mule"}
		h["X-MULE_X"] = []string{"x-mule"}
		h["MyRandomHeader"] = []string{"kept"}
		h["x-rivta-routing-history"] = []string{"mock-producer"}
		h["Content-Type"] = []string{"text/plain;charset=UTF-8"}
		_, _ = w.Write(mustRead("getcertificate-response.xml"))
	})
}

// Validity of the imported rows (the reference's test TAK data).
const (
	validFrom = "2013-08-09T00:00:00+0200"
	validTo   = "2123-08-09T00:00:00+0200"
)

// takdump builds a TAK export (PubVersion JSON, formatVersion 1) with TAK's
// id-based relationships, as an operator migrating from SKLTP imports it.
type takdump struct {
	next     int64
	ids      map[string]int64
	profiles []map[string]any
	contr    []map[string]any
	las      []map[string]any
	comps    []map[string]any
	addrs    []map[string]any
	auths    []map[string]any
	routes   []map[string]any
}

func newTakdump() *takdump { return &takdump{next: 100, ids: map[string]int64{}} }

func (d *takdump) id(key string, add func(id int64)) int64 {
	if id, ok := d.ids[key]; ok {
		return id
	}
	d.next++
	d.ids[key] = d.next
	add(d.next)
	return d.next
}

func (d *takdump) profile(name string) int64 {
	return d.id("p|"+name, func(id int64) {
		d.profiles = append(d.profiles, map[string]any{"id": id, "namn": name, "beskrivning": name, "pubversion": "1"})
	})
}

func (d *takdump) contract(ns string) int64 {
	return d.id("c|"+ns, func(id int64) {
		d.contr = append(d.contr, map[string]any{"id": id, "namnrymd": ns, "beskrivning": ns, "majorVersion": 1, "minorVersion": 0, "pubversion": "1"})
	})
}

func (d *takdump) la(hsa string) int64 {
	return d.id("l|"+hsa, func(id int64) {
		d.las = append(d.las, map[string]any{"id": id, "hsaId": hsa, "beskrivning": hsa, "pubversion": "1"})
	})
}

func (d *takdump) comp(hsa string) int64 {
	return d.id("k|"+hsa, func(id int64) {
		d.comps = append(d.comps, map[string]any{"id": id, "hsaId": hsa, "beskrivning": hsa, "pubversion": "1"})
	})
}

func (d *takdump) addr(url, profile string) int64 {
	p, c := d.profile(profile), d.comp("VP-TEST-PRODUCER")
	return d.id("a|"+profile+"|"+url, func(id int64) {
		d.addrs = append(d.addrs, map[string]any{"id": id, "adress": url, "pubversion": "1",
			"relationships": map[string]any{"rivtaprofil": p, "tjanstekomponent": c}})
	})
}

func (d *takdump) route(la, ns, profile, url string) {
	a, l, c := d.addr(url, profile), d.la(la), d.contract(ns)
	d.next++
	d.routes = append(d.routes, map[string]any{"id": d.next, "fromTidpunkt": validFrom, "tomTidpunkt": validTo, "pubversion": "1",
		"relationships": map[string]any{"anropsadress": a, "logiskadress": l, "tjanstekontrakt": c}})
}

func (d *takdump) auth(consumer, ns, la string) {
	l, k, c := d.la(la), d.comp(consumer), d.contract(ns)
	d.next++
	d.auths = append(d.auths, map[string]any{"id": d.next, "integrationsavtal": "acceptance", "fromTidpunkt": validFrom, "tomTidpunkt": validTo,
		"pubversion": "1", "relationships": map[string]any{"logiskAdress": l, "tjanstekonsument": k, "tjanstekontrakt": c}})
}

func (d *takdump) json() []byte {
	b, err := json.MarshalIndent(map[string]any{
		"formatVersion": "1", "version": "1", "tidpunkt": "2026-01-01T00:00:00+0100",
		"utforare": "acceptance", "kommentar": "skltp-vp.md §10.F",
		"data": map[string]any{
			"rivtaprofil": d.profiles, "tjanstekontrakt": d.contr, "logiskadress": d.las,
			"tjanstekomponent": d.comps, "anropsadress": d.addrs, "anropsbehorighet": d.auths,
			"vagval": d.routes, "filter": []any{}, "filtercategorization": []any{},
		},
	}, "", "  ")
	if err != nil {
		panic(err)
	}
	return b
}

// order builds an SKLTP order (beställning) that includes entities.
type order struct {
	contracts, las, comps, auths, routes []map[string]any
	seen                                 map[string]bool
}

func newOrder() *order { return &order{seen: map[string]bool{}} }

func (o *order) once(key string) bool {
	if o.seen[key] {
		return false
	}
	o.seen[key] = true
	return true
}

func (o *order) contract(ns string) {
	if o.once("c|" + ns) {
		o.contracts = append(o.contracts, map[string]any{"namnrymd": ns, "beskrivning": ns, "majorVersion": 1})
	}
}

func (o *order) la(hsa string) {
	if o.once("l|" + hsa) {
		o.las = append(o.las, map[string]any{"hsaId": hsa, "beskrivning": "Logisk adress " + hsa})
	}
}

func (o *order) comp(hsa string) {
	if o.once("k|" + hsa) {
		o.comps = append(o.comps, map[string]any{"hsaId": hsa, "beskrivning": "Tjänstekomponent " + hsa})
	}
}

func (o *order) route(la, ns, profile, url string) {
	o.contract(ns)
	o.la(la)
	o.comp("VP-TEST-PRODUCER")
	o.routes = append(o.routes, map[string]any{"adress": url, "logiskAdress": la, "tjanstekontrakt": ns,
		"rivtaprofil": profile, "tjanstekomponent": "VP-TEST-PRODUCER"})
}

func (o *order) auth(consumer, ns, la string) {
	o.contract(ns)
	o.la(la)
	o.comp(consumer)
	o.auths = append(o.auths, map[string]any{"logiskAdress": la, "tjanstekontrakt": ns, "tjanstekonsument": consumer})
}

func (o *order) json() []byte {
	now := time.Now().Format("2006-01-02T15:04:05-0700")
	empty := map[string]any{"tjanstekontrakt": []any{}, "logiskadresser": []any{}, "tjanstekomponenter": []any{}, "anropsbehorigheter": []any{}, "vagval": []any{}}
	b, err := json.MarshalIndent(map[string]any{
		"plattform": platform, "formatVersion": 1.0, "version": 1,
		"bestallningsTidpunkt": now, "genomforandeTidpunkt": now,
		"utforare": "acceptance", "kommentar": "skltp-vp.md §10.F",
		"inkludera": map[string]any{
			"tjanstekontrakt": o.contracts, "logiskadresser": o.las, "tjanstekomponenter": o.comps,
			"anropsbehorigheter": o.auths, "vagval": o.routes,
		},
		"exkludera": empty,
	}, "", "  ")
	if err != nil {
		panic(err)
	}
	return b
}

// Timeouts of the fixture: a default, and a shorter one for PingForConfiguration.
const (
	defaultTimeout = 1500 * time.Millisecond
	pingTimeout    = 500 * time.Millisecond
)

// loadFixture gives node A the catalog of skltp-vp.md §10.F, adapted to the
// loopback producers, through the admin API as an operator would: the rows
// VP's test TAK holds that TAK's order rules refuse today (a RIVTABP22
// profile, two valid routes for one address, a route without URL) come in a
// TAK export import; the GetActivities, scheduling and ping integrations in
// an order; then the HSA tree and the timeout file.
func loadFixture(n *harness.Node) error {
	p := env.http.URL
	d := newTakdump()
	d.profile("RIVTABP20")
	d.profile("RIVTABP21")
	for _, r := range []struct{ la, profile, url string }{
		{"HttpProducer", "RIVTABP20", p + pathOK},
		{"HttpsProducer", "RIVTABP20", env.https.URL + pathOK},
		{"NotAuthorizedReceiver", "RIVTABP20", p + pathOK},
		{"ReceiverNoProducerAvailable", "RIVTABP20", "http://" + env.closed.Addr + "/Im/not/available"},
		{"ReceiverUnknownRivVersion", "RIVTABP22", p + pathOK},
		{"ReceiverMultipleVagval", "RIVTABP20", p + pathOK},
		{"ReceiverMultipleVagval", "RIVTABP21", p + pathRiv21},
		{"ReceiverNoPhysicalAddress", "RIVTABP21", ""},
		{"ReceiverRiv21", "RIVTABP21", p + pathRiv21},
		{"ProducerSoapFault500", "RIVTABP20", p + pathSoapFault500},
		{"ProducerSoapFault200", "RIVTABP20", p + pathSoapFault200},
		{"Producer404", "RIVTABP20", p + pathNotFound},
		{"Producer500", "RIVTABP20", p + pathError500},
		{"ProducerEmpty", "RIVTABP20", p + pathEmpty},
		{"ProducerNonSoap", "RIVTABP20", p + pathNonSOAP},
		{"SlowProducer", "RIVTABP20", p + pathSlow},
		{"ProducerHeaders", "RIVTABP20", p + pathHeaders},
	} {
		d.route(r.la, nsCert, r.profile, r.url)
		if r.la != "NotAuthorizedReceiver" {
			d.auth(consumerTP, nsCert, r.la)
		}
	}
	d.auth(consumerDefault, nsCert, "*")
	d.auth(consumerB02, nsCert, "HttpProducer")
	d.auth(internalSender, nsCert, "HttpProducer")
	d.comp(consumerNobody)
	if _, err := n.Write("POST", "/api/v1/import", d.json()); err != nil {
		return fmt.Errorf("import: %w", err)
	}

	o := newOrder()
	for _, r := range []struct{ la, ns, profile, path string }{
		{"HttpProducer", nsAct, "RIVTABP21", "/activities"},
		{"ReceiverRiv20", nsAct, "RIVTABP20", "/activities20"},
		{"SE0000000003-1234", nsAct, "RIVTABP21", "/climb"},
		{"FirstReceiverRiv21", nsAct, "RIVTABP21", "/first"},
		{"SecondReceiverRiv21", nsAct, "RIVTABP21", "/second"},
		{"*", nsAct, "RIVTABP21", "/default"},
		{"SE0000000003-1234", nsSched, "RIVTABP21", "/climb"},
		{"local-ping-producer", nsPing, "RIVTABP20", "/ping"},
		{"SlowProducer", nsPing, "RIVTABP21", pathSlow},
	} {
		o.route(r.la, r.ns, r.profile, p+r.path)
	}
	for _, a := range []struct{ consumer, ns, la string }{
		{consumerDefault, nsAct, "*"},
		{consumerDefault, nsAct, "SE0000000003-1234"},
		{consumerDefault, nsAct, "FirstReceiverRiv21"},
		{consumerDefault, nsAct, "SecondReceiverRiv21"},
		{consumerTP, nsAct, "HttpProducer"},
		{consumerTP, nsAct, "ReceiverRiv20"},
		{consumerTP, nsAct, "GetActivitiesReceiverWithNoExplicitVagval"},
		{consumerDefault, nsSched, "SE0000000003-1234"},
		{consumerTP, nsPing, "local-ping-producer"},
		{consumerTP, nsPing, "SlowProducer"},
	} {
		o.auth(a.consumer, a.ns, a.la)
	}
	if _, err := n.Write("POST", "/api/v1/orders", o.json()); err != nil {
		return fmt.Errorf("order: %w", err)
	}
	if _, err := n.Write("PUT", "/api/v1/hsa-tree", mustRead("hsacache.xml")); err != nil {
		return fmt.Errorf("hsa tree: %w", err)
	}
	timeouts := fmt.Sprintf(`[
  {"tjanstekontrakt": "default_timeouts", "routetimeout": %d, "producertimeout": %d},
  {"tjanstekontrakt": %q, "routetimeout": %d, "producertimeout": %d}
]`, defaultTimeout.Milliseconds()+1000, defaultTimeout.Milliseconds(), nsPing, pingTimeout.Milliseconds()+1000, pingTimeout.Milliseconds())
	if _, err := n.Write("PUT", "/api/v1/timeouts", []byte(timeouts)); err != nil {
		return fmt.Errorf("timeouts: %w", err)
	}
	return nil
}

// loadSmallCatalog creates the RIV profiles with the catalog API and one
// integration with an order: HttpProducer and HttpsProducer for
// GetCertificate, callable by tp and SenderWithDefaultBehorighet.
func loadSmallCatalog(n *harness.Node) error {
	for _, p := range []string{"RIVTABP20", "RIVTABP21"} {
		if _, err := n.Write("POST", "/api/v1/catalog/rivprofile", []byte(`{"name":"`+p+`"}`)); err != nil {
			return err
		}
	}
	o := newOrder()
	o.route("HttpProducer", nsCert, "RIVTABP20", env.http.URL+pathOK)
	o.route("HttpsProducer", nsCert, "RIVTABP20", env.https.URL+pathOK)
	for _, c := range []string{consumerTP, consumerDefault} {
		o.auth(c, nsCert, "HttpProducer")
		o.auth(c, nsCert, "HttpsProducer")
	}
	_, err := n.Write("POST", "/api/v1/orders", o.json())
	return err
}

// faultTexts are the faultstring texts of skltp-vp.md §4.2 (after
// "VPnnn [<instance name>] ") and whether the code is a Server fault.
var faultTexts = map[string]struct {
	server bool
	text   string
}{
	"VP002": {false, "Fel i klientcertifikat. Saknas, är av felaktig typ, eller är felaktigt utformad."},
	"VP003": {false, "Logisk adressat (ReceiverId) saknas i RivHeadern i inkommande meddelande."},
	"VP004": {false, "Det finns inget vägval i tjänsteadresseringskatalogen som matchar anropets logiska adressat (ReceiverId) och tjänstekontrakt. Kontrollera uppgifterna i anropet och vid behov, beställ konfigurering i aktuell tjänsteplattform."},
	"VP005": {false, "Tjänsteproducenten stödjer inte anropets angivna rivta-version. Kontrollera uppgifterna."},
	"VP006": {true, "Internt fel i tjänsteplattformen. Det finns fler än en tjänsteproducent definierad i tjänsteadresseringskatalogen som matchar logisk adressat (ReceiverId), tjänstekontrakt och dagens datum. Tyder på felkonfiguration. Rapportera felet till tjänsteplattformsförvaltningen."},
	"VP007": {true, "Tjänstekonsumenten saknar behörighet att anropa den logiska adressaten via detta tjänstekontrakt. Kontrollera uppgifterna och vid behov, tillse att det beställs konfiguration i aktuell tjänsteplattform."},
	"VP008": {true, "Internt fel i tjänsteplattformen. Ingen kontakt med tjänsteadresseringskatalogen. Informera tjänsteplattformsförvaltningen."},
	"VP009": {true, "Fel vid kontakt med tjänsteproducenten."},
	"VP010": {true, "Internt fel i tjänsteplattformen. URL saknas för tjänsteproducenten i tjänsteplattformens tjänsteadresseringskatalog."},
	"VP011": {false, "Anrop har gjorts utanför TLS vilket ej är tillåtet. Tjänstekonsumenten ska alltid använda TLS för säker kommunikation."},
	"VP012": {true, "Internt fel i tjänsteplattformen. Nödvändiga resurser saknas för att VP skall fungera."},
	"VP013": {false, "Enligt tjänsteplattformens konfiguration saknar tjänstekonsumenten rätt att använda headern x-rivta-original-serviceconsumer-hsaid. Kontakta tjänsteplattformsförvaltningen."},
	"VP014": {true, "Anropsförmedlingen för den logiska adressaten har givit upphov till rundgång mellan tjänsteplattformar. Rapportera felet till tjänsteplattformsförvaltningen."},
	"VP015": {false, "Anrop ej korrekt utformat och kan därför inte behandlas."},
}

// fault checks that r is VP's fault for code (skltp-vp.md §4.1): HTTP 500,
// Content-Type text/xml; charset=UTF-8, a correlation id, a SOAP 1.1
// envelope whose faultcode is SOAP-ENV:Client or SOAP-ENV:Server as the code
// prescribes and whose faultstring is "VPnnn [NTjP Develop] <text>"; it
// returns the detailString.
func fault(t *testing.T, r *harness.Response, code string) string {
	t.Helper()
	ft, ok := faultTexts[code]
	if !ok {
		t.Fatalf("unknown code %s", code)
	}
	if r.Status != 500 {
		t.Fatalf("status %d, want 500 with %s; body:\n%s", r.Status, code, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != "text/xml; charset=UTF-8" {
		t.Errorf("fault Content-Type %q, want %q", ct, "text/xml; charset=UTF-8")
	}
	if r.Header.Get("x-skltp-correlation-id") == "" {
		t.Errorf("fault without x-skltp-correlation-id")
	}
	f, err := harness.ParseFault(r.Body)
	if err != nil {
		t.Fatalf("%s: %v; body:\n%s", code, err, r.Body)
	}
	if f.EnvelopeNS != harness.SOAP11NS {
		t.Errorf("envelope namespace %q, want SOAP 1.1 %q", f.EnvelopeNS, harness.SOAP11NS)
	}
	wantCode := "SOAP-ENV:Client"
	if ft.server {
		wantCode = "SOAP-ENV:Server"
	}
	if f.Code != wantCode {
		t.Errorf("faultcode %q, want %q", f.Code, wantCode)
	}
	if want := code + " [" + instanceName + "] " + ft.text; f.String != want {
		t.Fatalf("faultstring\n got %q\nwant %q", f.String, want)
	}
	if !f.HasDetail {
		t.Errorf("fault without <detail><detailString>")
	}
	return f.Detail
}

// faultDetail checks the fault and its exact detailString.
func faultDetail(t *testing.T, r *harness.Response, code, detail string) {
	t.Helper()
	if got := fault(t, r, code); got != detail {
		t.Errorf("%s detailString\n got %q\nwant %q", code, got, detail)
	}
}

// vp009Prefix is how every VP009 producer-error detail starts (§4.2).
func vp009Prefix(url string) string {
	return "Error connecting to service producer at address " + url + ". Exception Caught by Camel when contacting producer. Exception information: ("
}

// ok checks a routed call's answer: HTTP 200, the producer's body, the
// headers VP adds (§7).
func ok(t *testing.T, r *harness.Response) {
	t.Helper()
	if r.Status != 200 {
		t.Fatalf("status %d, want 200; body:\n%s", r.Status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); ct != "text/xml; charset=UTF-8" {
		t.Errorf("Content-Type %q, want %q", ct, "text/xml; charset=UTF-8")
	}
	if prt := r.Header.Get("x-skltp-prt"); prt == "" {
		t.Errorf("no x-skltp-prt")
	} else if ms, err := strconv.Atoi(prt); err != nil || ms < 0 {
		t.Errorf("x-skltp-prt %q is not a number of milliseconds", prt)
	}
	if r.Header.Get("x-skltp-correlation-id") == "" {
		t.Errorf("no x-skltp-correlation-id")
	}
	if !strings.Contains(string(r.Body), "GetCertificateResponse") && !strings.Contains(string(r.Body), nonSOAPBody) {
		t.Errorf("body is not the producer's:\n%s", r.Body)
	}
}
