"""Photos -> FLAME meshes (chapter 06): the analysis-by-synthesis fit on a photo crop (:mod:`.fit`,
``facecourse fit``) and the files of one reconstruction (:mod:`.outputs`), which ``facecourse reconstruct``
(the trained regressor) writes too.
"""

from facecourse.reconstruct.fit import fit_crop_size, fit_photo, landmark_nme, photo_fit_config, photo_renderer
from facecourse.reconstruct.outputs import (
    OVERLAY_SIZE,
    ReconstructionFiles,
    output_names,
    overlay_image,
    reconstruction_files,
    write_png,
    write_reconstruction,
)

__all__ = [
    "OVERLAY_SIZE", "ReconstructionFiles", "fit_crop_size", "fit_photo", "landmark_nme", "output_names", "overlay_image",
    "photo_fit_config", "photo_renderer", "reconstruction_files", "write_png", "write_reconstruction",
]
