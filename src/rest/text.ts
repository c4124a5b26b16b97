/** A route's answer that is not JSON (a CSV report): sent as is, with its content type. */
export class TextResponse {
  constructor(
    readonly contentType: string,
    readonly body: string,
  ) {}
}
