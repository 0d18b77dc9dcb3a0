/**
 * Compare-and-set of hash fields, all or nothing: each field is written only if every field still
 * holds the value the caller read. What `billing keys reseal` writes with, so a sealed value
 * another writer changed meanwhile is never overwritten with a copy of the old one.
 *
 * KEYS: 1 the hash. ARGV: triples (field, value read, new value), then the name of a counter
 * field to increment when the set is made ('' for none): a versioned record's `version`, so a
 * writer that read it before fails its own compare-and-set and reads again.
 * Returns 1 when written, 0 when a field had changed (nothing written).
 */
import { LuaScript } from './lua-script.ts';

export const SET_FIELDS_IF = new LuaScript(`
for i = 1, #ARGV - 1, 3 do
  if redis.call('HGET', KEYS[1], ARGV[i]) ~= ARGV[i + 1] then return 0 end
end
for i = 1, #ARGV - 1, 3 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 2]) end
if ARGV[#ARGV] ~= '' then redis.call('HINCRBY', KEYS[1], ARGV[#ARGV], 1) end
return 1
`);
