/** Bad input data: the message names the file and, where there is one, the row and the field. */
export class DataError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DataError';
  }
}
