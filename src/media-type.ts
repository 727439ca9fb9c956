/** A media type with optional parameters (RFC 9110 §8.3.1): what a content-type header may hold. */
export const MEDIA_TYPE =
  /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+\/[!#$%&'*+\-.^_`|~0-9A-Za-z]+(\s*;\s*[!#$%&'*+\-.^_`|~0-9A-Za-z]+=("[\x20\x21\x23-\x5b\x5d-\x7e]*"|[!#$%&'*+\-.^_`|~0-9A-Za-z]+))*$/;
