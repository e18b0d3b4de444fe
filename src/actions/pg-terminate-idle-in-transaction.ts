import * as sql from '../sql/actions.ts';
import { sessionAction } from './sessions.ts';

// Sessions idle inside an open transaction hold locks and snapshots (blocking vacuum);
// terminating them rolls the transaction back and closes the connection.

export default sessionAction({
  name: 'pg-terminate-idle-in-transaction',
  description:
    'Terminates (pg_terminate_backend) client sessions idle in a transaction (or an aborted one) longer than ' +
    'threshold_seconds, longest first, at most `limit` per run; optionally on one database only. Their open ' +
    'transaction is rolled back and their connection closed. Same exclusions as pg-cancel-long-queries: its own ' +
    'backend, housekeeper\'s sessions, protected users and applications, and sessions its role may not signal ' +
    '(reported only). Idempotent: a re-run finds only sessions still over the threshold. Verify: no such session left.',
  what: 'a transaction idle longer than',
  verb: 'terminate',
  done: 'terminated',
  list: sql.LIST_IDLE_IN_TRANSACTION,
  signal: sql.TERMINATE_IDLE_IN_TRANSACTION,
});
