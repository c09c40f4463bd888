package main

const usage = `usage: sandboxd <port> --working-dir DIR [--plugins NAME [NAME ...]]
                [--username USER] [--user-id UID]
                [--enable-browser | --no-enable-browser] [--browsergym-eval-env ENV]
                [--host ADDR]

The in-sandbox server of sbx. It speaks OpenHands' action execution
protocol on ADDR:<port> (ADDR defaults to 0.0.0.0).

Environment: SESSION_API_KEY, NO_CHANGE_TIMEOUT_SECONDS (10), SU_TO_USER (true),
RUNTIME_USERNAME, SANDBOX_GROUP_ID (root), DEBUG, LOG_JSON,
SBX_LISTEN_FD (serve on this inherited listening socket instead of binding
ADDR:<port>; <port> is still given, for the file viewer), SBX_STATE_DIR
(/tmp/sbx-sandboxd-<port>), SBX_URL_FILE (file viewer URL; /tmp/oh-server-url).
`
