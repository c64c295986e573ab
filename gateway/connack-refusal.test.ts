import { describe, expect, it } from 'vitest';
import { connectProtocolLevel } from './connack-refusal.js';

describe('the protocol level of a CONNECT, from its first bytes', () => {
  const connect = (name: string, level: number) => {
    const body = Buffer.concat([Buffer.from([0x00, name.length]), Buffer.from(name), Buffer.from([level, 0x02, 0x00, 0x3c])]);
    return Buffer.concat([Buffer.from([0x10, body.length]), body]);
  };

  it('reads MQTT 3.1, 3.1.1 and 5', () => {
    expect(connectProtocolLevel(connect('MQIsdp', 3))).toBe(3);
    expect(connectProtocolLevel(connect('MQTT', 4))).toBe(4);
    expect(connectProtocolLevel(connect('MQTT', 5))).toBe(5);
  });

  it('asks for more while the level has not arrived, and says null for what is not a CONNECT', () => {
    const whole = connect('MQTT', 4);
    for (let n = 0; n < 9; n++) expect(connectProtocolLevel(whole.subarray(0, n))).toBeUndefined();
    expect(connectProtocolLevel(Buffer.from([0x30, 0x02, 0x00, 0x00]))).toBeNull();
    expect(connectProtocolLevel(Buffer.from('GET / HTTP/1.1\r\n'))).toBeNull();
    expect(connectProtocolLevel(Buffer.from([0x10, 0x0a, 0x00, 0x09]))).toBeNull();
    expect(connectProtocolLevel(Buffer.from([0x10, 0xff, 0xff, 0xff, 0xff, 0x01]))).toBeNull();
  });
});
