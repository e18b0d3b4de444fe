import * as sql from '../sql/actions.ts';
import { sessionAction } from './sessions.ts';

// The runbook's "long-running queries": cancel (not terminate) what runs longer than the
// threshold. The session survives; only its current statement fails.

export default sessionAction({
  name: 'pg-cancel-long-queries',
  description:
    'Cancels (pg_cancel_backend) client queries active longer than threshold_seconds, oldest first, at most `limit` per ' +
    'run; optionally on one database only. Never touches its own backend, housekeeper\'s sessions, or sessions of ' +
    'actions.protected_users / protected_applications; sessions its role may not signal (superusers\' when it is not ' +
    'one; others\' without pg_signal_backend) are reported, not signalled. Picking and cancelling is one statement, so ' +
    'a backend that moved on is not hit. Idempotent: a re-run cancels only what is still over the threshold. Verify: no ' +
    'such query left (re-checked for up to 5 s while cancels land).',
  what: 'queries active longer than',
  verb: 'cancel',
  done: 'cancelled',
  list: sql.LIST_LONG_QUERIES,
  signal: sql.CANCEL_LONG_QUERIES,
});
