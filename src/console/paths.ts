/** Where the operator console is mounted (a leaf: the access policy imports it). */
export const CONSOLE_PATH = '/console';
