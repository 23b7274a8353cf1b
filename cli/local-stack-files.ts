/** Files `keybrake dev` keeps in its home (KEYBRAKE_HOME, default ./.keybrake), which the CLI reads too. Here, not in dev/: the CLI ships without dev/. */

/** The local stack's generated master key and tokens (mode 0600). */
export const LOCAL_SECRETS_FILE = 'local.json';
/** Where the running local stack listens: `{"grpc": "127.0.0.1:7070", "admin": …, "proxy": …}`. */
export const DEV_ADDRESSES_FILE = 'addresses.json';
