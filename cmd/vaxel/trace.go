package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"text/tabwriter"
	"time"

	"github.com/vaxel/vaxel/node"
)

const traceUsage = `vaxel trace [-admin HOST:PORT -cert FILE -key FILE -ca FILE] [-json] ID

  ID is a trace id (from traceparent) or a correlation id (x-skltp-correlation-id).
  Asks the node that took the call for the whole chain across the federation
  (GET /api/v1/trace/ID) and prints one line per hop, the consumer's side first:
  total time at the hop, time spent downstream, and the hop's own time.
`

func cmdTrace(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("trace", flag.ContinueOnError)
	client := adminFlags(fs, "admin API address of the node that took the call", 30*time.Second)
	asJSON := fs.Bool("json", false, "print the admin API's JSON answer")
	fs.Usage = func() { fmt.Fprint(fs.Output(), traceUsage); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("trace: want one trace id or correlation id\n%s", traceUsage)
	}
	c, err := client()
	if err != nil {
		return fmt.Errorf("trace: %w", err)
	}
	var buf bytes.Buffer
	if err := c.do(ctx, "GET", "/api/v1/trace/"+url.PathEscape(fs.Arg(0)), nil, nil, &buf); err != nil {
		return err
	}
	if *asJSON {
		_, err := stdout.Write(buf.Bytes())
		return err
	}
	var ans node.TraceAnswer
	if err := json.Unmarshal(buf.Bytes(), &ans); err != nil {
		return fmt.Errorf("trace: the admin API's answer: %w", err)
	}
	return printTrace(stdout, &ans)
}

func printTrace(w io.Writer, ans *node.TraceAnswer) error {
	if len(ans.Hops) > 0 {
		fmt.Fprintf(w, "trace %s  correlation %s\n\n", ans.Hops[0].TraceID, ans.Hops[0].CorrelationID)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tPLATFORM\tNODE\tOUTCOME\tCONSUMER\tORIGINAL CONSUMER\tCONTRACT\tLOGICAL ADDRESS\tNEXT HOP\tTOTAL\tDOWNSTREAM\tOWN")
	for i, h := range ans.Hops {
		next := h.NextHop
		if h.NextPlatform != "" {
			next = h.NextPlatform + " " + h.NextHop
		}
		if next == "" {
			next = "-"
		}
		total := h.Answered.Sub(h.Received)
		down, downS := time.Duration(0), "-"
		if !h.Forwarded.IsZero() && !h.DownstreamAnswered.IsZero() {
			down = h.DownstreamAnswered.Sub(h.Forwarded)
			downS = fmtDur(down)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", i+1, h.Platform, h.Node, h.Outcome, h.Consumer, h.OriginalConsumer,
			h.Contract, h.LogicalAddress, next, fmtDur(total), downS, fmtDur(total-down))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, s := range ans.Incomplete {
		fmt.Fprintln(w, "incomplete:", s)
	}
	return nil
}

func fmtDur(d time.Duration) string {
	return fmt.Sprintf("%.3fms", float64(d.Microseconds())/1000)
}
