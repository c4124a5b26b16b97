import http from "node:http";

/** A bounded pool of keep-alive sockets, so thousands of parallel requests queue instead of exhausting descriptors. */
export function createAgent(maxSockets = 64): http.Agent {
  return new http.Agent({ keepAlive: true, maxSockets });
}

export interface JsonResponse<T = any> {
  status: number;
  body: T;
}

export function postJson<T = any>(url: string, body: unknown, headers: Record<string, string>, agent: http.Agent): Promise<JsonResponse<T>> {
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const request = http.request(
      url,
      {
        method: "POST",
        agent,
        headers: { "content-type": "application/json", accept: "application/json", "content-length": Buffer.byteLength(payload), ...headers },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("end", () => {
          try {
            resolve({ status: response.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString("utf8")) });
          } catch (error) {
            reject(error);
          }
        });
        response.on("error", reject);
      },
    );
    request.on("error", reject);
    request.end(payload);
  });
}
