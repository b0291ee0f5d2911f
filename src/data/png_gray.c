/* png_gray.c — images as 8-bit gray for the pixel tasks: LRA's grayscale formula (tf.image.rgb_to_grayscale
 * on uint8, as LRA's CIFAR-10 pipeline) and PNG decoding with libpng's simplified API (any bit depth and
 * color type; color through the same formula).
 *
 * Deliberately not here: resizing, other image formats, color output.
 *
 * Entry points: pare_gray_tf, pare_png_read_gray.
 */
#include "data/lra_files.h"

#include <errno.h>
#include <png.h>
#include <stdio.h>
#include <string.h>

#include "core/arena.h"

/* ---- grayscale and PNG ---- */

uint8_t pare_gray_tf(uint8_t r, uint8_t g, uint8_t b)
{
    /* float32 throughout, as TF: convert_image_dtype to float (x * 1/255), tensordot with the weights,
     * convert back (x * 255.5, cast truncates) */
    const float s = 1.0f / 255.0f;
    float v = ((float)r * s) * 0.2989f + ((float)g * s) * 0.5870f + ((float)b * s) * 0.1140f;
    float x = v * 255.5f;
    return (uint8_t)(x >= 255.0f ? 255 : x <= 0.0f ? 0 : (int)x);
}

pare_status pare_png_read_gray(uint8_t **pixels, int *width, int *height, const char *path)
{
    *pixels = NULL, *width = *height = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return pare_fail(PARE_EIO, "%s: cannot open: %s", path, strerror(errno));
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_stdio(&img, f)) {
        fclose(f);
        return pare_fail(PARE_EFORMAT, "%s: not a readable PNG: %s", path, img.message);
    }
    int color = (img.format & PNG_FORMAT_FLAG_COLOR) != 0;
    img.format = color ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
    size_t w = img.width, h = img.height, ch = color ? 3 : 1;
    if (w == 0 || h == 0 || w > 65536 || h > 65536 || w * h > ((size_t)1 << 28)) {
        png_image_free(&img), fclose(f);
        return pare_fail(PARE_EFORMAT, "%s: unsupported image size %zux%zu", path, w, h);
    }
    uint8_t *buf = pare_calloc(w * h * ch); /* zeroed: alpha is composited onto black */
    if (!buf) {
        png_image_free(&img), fclose(f);
        return pare_fail(PARE_ENOMEM, "%s: out of memory for a %zux%zu image", path, w, h);
    }
    if (!png_image_finish_read(&img, NULL, buf, 0, NULL)) {
        fclose(f), pare_free(buf);
        return pare_fail(PARE_EFORMAT, "%s: bad PNG data: %s", path, img.message);
    }
    fclose(f);
    if (color)
        for (size_t i = 0; i < w * h; i++) buf[i] = pare_gray_tf(buf[3 * i], buf[3 * i + 1], buf[3 * i + 2]);
    *pixels = buf, *width = (int)w, *height = (int)h;
    return PARE_OK;
}
