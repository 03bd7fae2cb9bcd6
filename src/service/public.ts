import type { Service } from './types.js'

/** A service as the API shows it: users by name only, never their passwords (the original's R8). */
export function withoutPasswords(service: Service): Omit<Service, 'users'> & { users: Array<{ name: string; encrypted: boolean }> } {
  return { ...service, users: service.users.map(({ name, encrypted }) => ({ name, encrypted })) }
}
