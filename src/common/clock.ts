/** Time as the key store and signer see it: unix seconds, injectable so tests can move it. */
export type Clock = () => number;

export const systemClock: Clock = () => Math.floor(Date.now() / 1000);
