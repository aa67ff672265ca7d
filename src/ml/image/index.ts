export { DEFAULT_IMAGE_LIMITS, type ImageFormat, type ImageLimits, type RgbImage } from './types';
export { sniffImage, type ImageInfo } from './sniff';
export { decodeImage, type DecodedImage } from './decode';
export { decodeBmp, parseBmpHeader } from './bmp';
