// Admin-console commands the PgBouncer collector runs. The console speaks only the simple
// query protocol, so these are sent without parameters.
export const SHOW_POOLS = 'SHOW POOLS';
export const SHOW_STATS = 'SHOW STATS';
export const SHOW_DATABASES = 'SHOW DATABASES';
export const SHOW_CONFIG = 'SHOW CONFIG';
export const SHOW_LISTS = 'SHOW LISTS';
export const SHOW_VERSION = 'SHOW VERSION';
