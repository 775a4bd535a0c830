package catalog

import (
	"errors"
	"sync"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// keyCommitIndex holds the last commit index known to be durable, in the
// bolt file's stable-store bucket.
var keyCommitIndex = []byte("vaxel_commit_index")

// commitTrackingStore is raft-boltdb with commit tracking, so that Raft's
// RestoreCommittedLogs can re-apply committed entries on start without a
// leader. Without it a node that crashed (no snapshot on the way out) would
// restart with the catalog of its last snapshot, and, if it is alone, serve
// that old catalog until a leader is elected.
//
// Raft stages the commit index before each StoreLogs. The index is written
// after the logs, in a second bolt transaction: a crash between the two
// leaves the previous, lower index, which is safe (fewer entries replayed,
// the rest arrive from the leader). The index so persisted trails the log by
// one write (Raft stages the commit index it knew before appending), and
// GetCommitIndex never exceeds the last stored entry.
type commitTrackingStore struct {
	*raftboltdb.BoltStore

	mu     sync.Mutex // guards staged
	staged uint64
}

var _ raft.CommitTrackingLogStore = (*commitTrackingStore)(nil)

func (s *commitTrackingStore) StageCommitIndex(idx uint64) error {
	s.mu.Lock()
	s.staged = idx
	s.mu.Unlock()
	return nil
}

func (s *commitTrackingStore) StoreLog(l *raft.Log) error { return s.StoreLogs([]*raft.Log{l}) }

func (s *commitTrackingStore) StoreLogs(logs []*raft.Log) error {
	if err := s.BoltStore.StoreLogs(logs); err != nil {
		return err
	}
	s.mu.Lock()
	idx := s.staged
	s.mu.Unlock()
	if idx == 0 {
		return nil
	}
	return s.BoltStore.SetUint64(keyCommitIndex, idx)
}

func (s *commitTrackingStore) GetCommitIndex() (uint64, error) {
	idx, err := s.BoltStore.GetUint64(keyCommitIndex)
	if errors.Is(err, raftboltdb.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	last, err := s.BoltStore.LastIndex()
	if err != nil {
		return 0, err
	}
	return min(idx, last), nil
}
