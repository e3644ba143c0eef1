/** The admin CLI's `clients` commands: register, list, rotate the secret of and remove OAuth clients. */
import { createClientStore, type ClientRecord } from '../oauth/client-store.js';
import { validateClient, validateClientId, type ClientSettings, type ExtraClaims, type GrantType } from '../oauth/clients.js';
import { EXIT_NOT_FOUND, EXIT_OK, formatTable, UsageError, type CommandGroup, type Context, type OptionValues, type Output } from './admin-cli-command.js';

const USAGE = `Clients commands (the OAuth clients of POST /oauth/token):
  add <client_id> [--scope "A B"] [--grant-types "G H"] [--audience AUD] [--claims JSON] [--json]
                              register a client and print its secret, shown only this once;
                              grant types: client_credentials (the default), password
  list [--json]               every client, removed ones too; never a secret
  rotate-secret <client_id> [--json]
                              print a new secret; the old one stops working at once
  remove <client_id>          disable a client for good; its id is never reused`;

const OPTIONS = {
  json: { type: 'boolean' },
  scope: { type: 'string' },
  'grant-types': { type: 'string' },
  audience: { type: 'string' },
  claims: { type: 'string' },
} as const;

const spaceSeparated = (list: string) => list.split(' ').filter((item) => item !== '');

/** The one operand of `command`, a client id. */
function clientIdOperand(command: string, [clientId, ...others]: readonly string[]): string {
  if (clientId === undefined || others.length > 0) throw new UsageError(`${command} needs one client id`);
  return validateClientId(clientId);
}

function parseClaims(claims: string): unknown {
  try {
    return JSON.parse(claims);
  } catch {
    throw new UsageError(`--claims takes a JSON object, got ${claims}`);
  }
}

/** The settings the options give, checked as the store would check them (invalid ones are wrong usage). */
function clientSettings(clientId: string, options: OptionValues<typeof OPTIONS>): ClientSettings {
  // Typed as they should be; validateClient refuses what is not a grant type, or claims that are not an object.
  const settings = {
    scopes: options.scope === undefined ? undefined : spaceSeparated(options.scope),
    grantTypes: options['grant-types'] === undefined ? undefined : (spaceSeparated(options['grant-types']) as GrantType[]),
    audience: options.audience,
    extraClaims: options.claims === undefined ? undefined : (parseClaims(options.claims) as ExtraClaims),
  };
  validateClient(clientId, settings);
  return settings;
}

/** The secret on stdout, the only time it is seen: after `heading` on a line of its own, or `{"client_id","client_secret"}` with --json. */
function printSecret(output: Output, clientId: string, secret: string, json: boolean, heading: string): void {
  output.out(json ? JSON.stringify({ client_id: clientId, client_secret: secret }) : `${heading}\n${secret}`);
}

async function addClient({ db, output }: Context, clientId: string, settings: ClientSettings, json: boolean): Promise<number> {
  const secret = await createClientStore(db).add(clientId, settings);
  printSecret(output, clientId, secret, json, `registered client ${clientId}; its secret, shown only this once:`);
  return EXIT_OK;
}

function describeClient(client: ClientRecord) {
  return {
    clientId: client.clientId,
    scopes: client.scopes,
    grantTypes: client.grantTypes,
    audience: client.audience ?? null,
    extraClaims: client.extraClaims,
    createdAt: client.createdAt,
    disabledAt: client.disabledAt,
  };
}

async function listClients({ db, output }: Context, json: boolean): Promise<number> {
  const clients = (await createClientStore(db).list()).map(describeClient);
  if (json) {
    output.out(JSON.stringify(clients, null, 2));
    return EXIT_OK;
  }
  const header = ['CLIENT ID', 'SCOPES', 'GRANT TYPES', 'AUDIENCE', 'EXTRA CLAIMS', 'CREATED', 'REMOVED'];
  // A dash for what is not set keeps every column filled.
  const orDash = (value: string | null) => (value === null || value === '' ? '-' : value);
  const claimsOf = (claims: ExtraClaims) => (Object.keys(claims).length === 0 ? null : JSON.stringify(claims));
  const rows = clients.map((client) =>
    [client.clientId, client.scopes.join(' '), client.grantTypes.join(' '), client.audience, claimsOf(client.extraClaims), client.createdAt, client.disabledAt].map(orDash),
  );
  output.out(formatTable([header, ...rows]));
  return EXIT_OK;
}

function noSuchClient(output: Output, clientId: string): number {
  output.err(`jwks-server: there is no client ${clientId}`);
  return EXIT_NOT_FOUND;
}

async function rotateSecret({ db, output }: Context, clientId: string, json: boolean): Promise<number> {
  const secret = await createClientStore(db).rotateSecret(clientId);
  if (secret === undefined) return noSuchClient(output, clientId);
  printSecret(output, clientId, secret, json, `rotated the secret of client ${clientId} (the old one no longer works); the new one, shown only this once:`);
  return EXIT_OK;
}

async function removeClient({ db, output }: Context, clientId: string): Promise<number> {
  const outcome = await createClientStore(db).remove(clientId);
  if (outcome === 'not-found') return noSuchClient(output, clientId);
  output.out(outcome === 'removed' ? `removed client ${clientId}` : `client ${clientId} was already removed`);
  return EXIT_OK;
}

/** `jwks-server clients <command>`. A secret is printed once, when it is made; never a digest. */
export const clientCommands: CommandGroup<typeof OPTIONS> = {
  options: OPTIONS,
  usage: USAGE,
  commands: {
    add: (options, operands) => {
      const clientId = clientIdOperand('add', operands);
      const settings = clientSettings(clientId, options);
      return (context) => addClient(context, clientId, settings, options.json === true);
    },
    list: ({ json }) => (context) => listClients(context, json === true),
    'rotate-secret': ({ json }, operands) => {
      const clientId = clientIdOperand('rotate-secret', operands);
      return (context) => rotateSecret(context, clientId, json === true);
    },
    remove: (_options, operands) => {
      const clientId = clientIdOperand('remove', operands);
      return (context) => removeClient(context, clientId);
    },
  },
};
